"""Every stored image decodes with TF's JPEG decoder; unreadable ones are named."""

import colorsys
import io

import numpy as np
import pytest
import tensorflow as tf
import tifffile
from PIL import Image

from vww.data.images import (
    UnreadableImageError,
    decode_image,
    eight_bit,
    rgb_pixels,
    stored_size,
    tf_jpeg,
)


def encoded(mode, fmt="JPEG", size=(48, 32)):
    pixels = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_baseline_jpeg_is_kept_as_is(mode):
    data = encoded(mode)
    assert tf_jpeg(data, "x.jpg") == (data, 32, 48, None, 1)


@pytest.mark.parametrize("mode,fmt,reason", [
    ("CMYK", "JPEG", "CMYK JPEG"),
    ("RGB", "PNG", "PNG data, not JPEG"),
    ("L", "PNG", "PNG data, not JPEG"),
])
def test_odd_images_are_reencoded_to_decodable_jpeg(mode, fmt, reason):
    data = encoded(mode, fmt)
    jpeg, height, width, why, _ = tf_jpeg(data, "x.jpg")
    assert why == reason and jpeg != data
    assert Image.open(io.BytesIO(jpeg)).format == "JPEG"
    assert tf.io.decode_jpeg(jpeg, channels=3).shape == (32, 48, 3)
    assert (height, width) == (32, 48)
    assert tf_jpeg(data, "x.jpg")[0] == jpeg  # re-encoding is deterministic


@pytest.mark.parametrize("data", [b"", b"not an image", encoded("RGB")[:300]])
def test_unreadable_image_names_the_file(data):
    with pytest.raises(UnreadableImageError, match="COCO_val2014_000000000042.jpg"):
        tf_jpeg(data, "COCO_val2014_000000000042.jpg")


@pytest.mark.parametrize("mode,fmt", [("RGB", "JPEG"), ("L", "JPEG"), ("CMYK", "JPEG"),
                                      ("RGB", "PNG")])
def test_large_images_are_stored_downscaled(mode, fmt):
    data = encoded(mode, fmt, size=(640, 427))
    jpeg, height, width, reason, _ = tf_jpeg(data, "x.jpg", max_image_side=192)
    assert (width, height) == (192, 128)  # aspect kept: 427 * 192 / 640 = 128.1
    # Only the format re-encodes; a JPEG is stored downscaled, with no other reason.
    assert reason == {"CMYK": "CMYK JPEG", "PNG": "PNG data, not JPEG"}.get(
        mode if fmt == "JPEG" else fmt)
    assert decode_image(data, "x.jpg", max_image_side=192).size == (640, 427)
    assert tf.io.decode_jpeg(jpeg, channels=3).shape == (128, 192, 3)
    assert tf_jpeg(data, "x.jpg", max_image_side=192)[0] == jpeg  # deterministic


def test_downscaled_image_keeps_the_picture():
    # a left-dark, right-bright picture stays so after the DCT-domain and bilinear scaling
    pixels = np.zeros((480, 640, 3), np.uint8)
    pixels[:, 320:] = 200
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=95)
    jpeg = tf_jpeg(out.getvalue(), "x.jpg", max_image_side=96).jpeg
    small = tf.io.decode_jpeg(jpeg).numpy().astype(int)
    assert small.shape == (72, 96, 3)
    assert abs(small[:, :40].mean() - 0) < 4 and abs(small[:, 56:].mean() - 200) < 4


def test_small_images_keep_their_bytes():
    data = encoded("RGB", size=(150, 100))
    assert tf_jpeg(data, "x.jpg", max_image_side=192) == (data, 100, 150, None, 1)


@pytest.mark.parametrize("size,max_image_side,expected", [
    ((640, 480), 192, (192, 144)), ((480, 640), 192, (144, 192)), ((192, 100), 192, (192, 100)),
    ((1000, 3), 192, (192, 1)), ((640, 480), None, (640, 480)),
])
def test_stored_size(size, max_image_side, expected):
    assert stored_size(*size, max_image_side) == expected


# Every Pillow mode into 8 bits by what its values mean (vww.data.images.eight_bit), each checked
# pixel for pixel against numpy's own computation of the rule, on a file of that mode.

RNG = np.random.default_rng(26)
BYTES = RNG.integers(0, 256, (6, 8, 4), dtype=np.uint8)
BYTES[0, :4, -1] = (0, 1, 254, 255)  # alpha's ends, and values around them
BYTES[1, :4] = 0
BYTES[2, :4] = 255
PALETTE = RNG.integers(0, 256, (256, 3), dtype=np.uint8)
INDICES = RNG.integers(0, 256, (6, 8), dtype=np.uint8)
PALETTE_ALPHA = RNG.integers(0, 256, 256, dtype=np.uint8)


def file_bytes(image, fmt, **options):
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def decoded(data, mode):
    """The 8-bit pixels decode_image gives for the file bytes `data`, which Pillow opens in
    `mode` (so the test checks the mode it names)."""
    image = decode_image(data, "x")
    assert image.mode == mode
    return np.asarray(image.pixels)


def rounded(values):
    """Half up, as floor(x + 0.5)."""
    return np.floor(np.asarray(values, np.float64) + 0.5)


def over_white(color, alpha):
    """Straight colour over white by alpha, as a viewer shows it."""
    color, alpha = np.asarray(color, np.float64), np.asarray(alpha, np.float64)[..., None]
    return rounded(color * alpha / 255 + 255 * (1 - alpha / 255))


def sixteen_bit(values):
    """The PNG specification's 16 -> 8-bit scaling of values clipped to [0, 65535]."""
    return rounded(np.clip(np.asarray(values, np.float64), 0, 65535) * 255 / 65535)


def palette_image(mode):
    image = Image.new(mode, INDICES.shape[::-1])
    image.putpalette(PALETTE.tobytes())
    if mode == "PA":
        image.putdata(list(zip(INDICES.flat, PALETTE_ALPHA[INDICES].flat)))
    else:
        image.putdata(list(INDICES.flat))
    return image


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_eight_bit_gray_and_rgb_are_kept(mode):
    pixels = BYTES[..., 0] if mode == "L" else BYTES[..., :3]
    assert np.array_equal(decoded(file_bytes(Image.fromarray(pixels), "PNG"), mode), pixels)


def test_one_bit_is_black_or_white():
    bits = BYTES[..., 0] > 127
    data = file_bytes(Image.fromarray(bits), "PNG")
    assert np.array_equal(decoded(data, "1"), np.where(bits, 255, 0))


SIXTEEN_BIT = RNG.integers(0, 65536, (6, 8)).astype(np.uint16)
SIXTEEN_BIT[0, :6] = (0, 1, 128, 129, 65534, 65535)  # around the rounding of 0 and 255
SIXTEEN_BIT[1] = np.arange(8) * 257 * 36  # an 8-bit value k stored in 16 bits: 257 k -> k
BYTE_ORDER = {"I;16": "<", "I;16B": ">", "I;16L": "<", "I;16N": "="}


def sixteen_bit_image(mode):
    # Pillow's own conversion between 16-bit modes clips to 8 bits: made from the bytes
    return Image.frombytes(mode, SIXTEEN_BIT.shape[::-1],
                           SIXTEEN_BIT.astype(f"{BYTE_ORDER[mode]}u2").tobytes())


@pytest.mark.parametrize("mode,fmt", [("I;16", "PNG"), ("I;16B", "TIFF")])
def test_sixteen_bit_gray_is_scaled_with_png_rounding(mode, fmt):
    pixels = decoded(file_bytes(sixteen_bit_image(mode), fmt), mode)
    assert np.array_equal(pixels, sixteen_bit(SIXTEEN_BIT))
    assert np.array_equal(pixels[1], np.arange(8) * 36)


@pytest.mark.parametrize("mode", ["I;16L", "I;16N"])
def test_in_memory_sixteen_bit_modes(mode):
    # No file Pillow reads opens in these modes: the image is made in memory.
    pixels = np.asarray(eight_bit(sixteen_bit_image(mode)))
    assert np.array_equal(pixels, sixteen_bit(SIXTEEN_BIT))


def test_32_bit_integers_are_clipped_to_16_bits_then_scaled():
    values = RNG.integers(-70000, 140000, (6, 8)).astype(np.int32)
    values[0, :4] = (-1, 0, 65535, 65536)
    pixels = decoded(file_bytes(Image.fromarray(values), "TIFF"), "I")
    assert np.array_equal(pixels, sixteen_bit(values))


def test_float_is_taken_as_zero_to_one():
    values = RNG.uniform(-0.2, 1.2, (6, 8)).astype(np.float32)
    values[0, :5] = (np.nan, 0.5 / 255, 0.49 / 255, 1.0, 2.0)
    pixels = decoded(file_bytes(Image.fromarray(values), "TIFF"), "F")
    expected = np.where(np.isnan(values), 0,
                        np.clip(rounded(values.astype(np.float64) * 255), 0, 255))
    assert np.array_equal(pixels, expected)
    assert pixels[0, :5].tolist() == [0, 1, 0, 255, 255]


@pytest.mark.parametrize("mode", ["LA", "RGBA"])
def test_alpha_is_composited_over_white(mode):
    pixels = BYTES[..., [0, 3]] if mode == "LA" else BYTES
    got = decoded(file_bytes(Image.fromarray(pixels, mode), "PNG"), mode)
    expected = over_white(pixels[..., :-1], pixels[..., -1])
    assert np.array_equal(got, expected[..., 0] if mode == "LA" else expected)
    assert (got[BYTES[..., 3] == 0] == 255).all()  # fully transparent: white


def premultiplied():
    """BYTES with each colour multiplied by its alpha (what "La" and "RGBa" hold)."""
    alpha = BYTES[..., 3:].astype(np.float64)
    return np.concatenate([rounded(BYTES[..., :3] * alpha / 255), alpha], -1).astype(np.uint8)


def test_premultiplied_gray_alpha_is_composited_over_white():
    # Pillow writes no "La" file; a TIFF with associated alpha opens as "La".
    pixels = premultiplied()[..., [0, 3]]
    out = io.BytesIO()
    tifffile.imwrite(out, pixels, photometric="minisblack", extrasamples=[1])
    got = decoded(out.getvalue(), "La")
    color, alpha = pixels[..., 0].astype(np.float64), pixels[..., 1].astype(np.float64)
    assert np.array_equal(got, rounded(color + 255 * (1 - alpha / 255)))


def test_premultiplied_rgb_alpha_is_composited_over_white():
    # No file opens as "RGBa" (Pillow reads associated alpha as "RGBA"): made in memory.
    pixels = premultiplied()
    image = Image.frombytes("RGBa", pixels.shape[1::-1], pixels.tobytes())
    color, alpha = pixels[..., :3].astype(np.float64), pixels[..., 3:].astype(np.float64)
    assert np.array_equal(np.asarray(eight_bit(image)), rounded(color + 255 * (1 - alpha / 255)))


def test_palette_gives_its_colours():
    data = file_bytes(palette_image("P"), "PNG")
    assert np.array_equal(decoded(data, "P"), PALETTE[INDICES])


@pytest.mark.parametrize("fmt,transparency,alpha", [
    ("PNG", PALETTE_ALPHA.tobytes(), PALETTE_ALPHA),  # tRNS: an alpha per palette entry
    ("GIF", int(INDICES[0, 0]), np.where(np.arange(256) == INDICES[0, 0], 0, 255)),
])
def test_palette_transparency_is_composited_over_white(fmt, transparency, alpha):
    data = file_bytes(palette_image("P"), fmt, transparency=transparency)
    assert np.array_equal(decoded(data, "P"), over_white(PALETTE[INDICES], alpha[INDICES]))


def test_palette_with_alpha_is_composited_over_white():
    data = file_bytes(palette_image("PA"), "TIFF")
    expected = over_white(PALETTE[INDICES], PALETTE_ALPHA[INDICES])
    assert np.array_equal(decoded(data, "PA"), expected)


def test_cmyk_is_pillows_standard_formula():
    data = file_bytes(Image.fromarray(BYTES, "CMYK"), "TIFF")
    cmy, black = BYTES[..., :3].astype(np.float64), BYTES[..., 3:].astype(np.float64)
    assert np.array_equal(decoded(data, "CMYK"), rounded((255 - cmy) * (255 - black) / 255))


def test_ycbcr_is_the_jfif_formula():
    data = file_bytes(Image.fromarray(BYTES[..., :3], "YCbCr"), "TIFF")
    y, cb, cr = (BYTES[..., i].astype(np.float64) for i in range(3))
    expected = np.clip(np.stack([y + 1.402 * (cr - 128),
                                 y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128),
                                 y + 1.772 * (cb - 128)], -1), 0, 255)
    # Pillow's fixed-point arithmetic: within 1 of the real-valued formula
    assert np.abs(decoded(data, "YCbCr") - expected).max() <= 1


def test_lab_grays_are_their_srgb_lightness():
    lightness = np.arange(256, dtype=np.uint8).reshape(16, 16)
    lab = np.stack([lightness, 0 * lightness, 0 * lightness], -1)  # a* = b* = 0: gray
    pixels = decoded(file_bytes(Image.fromarray(lab, "LAB"), "TIFF"), "LAB")
    star = lightness * 100.0 / 255  # L* of the 8-bit encoding
    luminance = np.where(star > 8, ((star + 16) / 116) ** 3, star * 27 / 24389)
    srgb = np.where(luminance <= 0.0031308, 12.92 * luminance,
                    1.055 * luminance ** (1 / 2.4) - 0.055) * 255
    # LittleCMS's 8-bit transform (and its white point adaptation): within 2 of the formulas
    assert np.abs(pixels - srgb[..., None]).max() < 2


def test_hsv_is_the_standard_formula():
    # No file format holds HSV: made in memory.
    hsv = BYTES[..., :3]
    expected = [[colorsys.hsv_to_rgb(*(pixel / 255)) for pixel in row] for row in hsv]
    got = np.asarray(eight_bit(Image.fromarray(hsv, "HSV")))
    assert np.array_equal(got, rounded(np.array(expected) * 255))


def test_sixteen_bit_png_decodes_and_stores_as_its_eight_bit_twin():
    eight = BYTES[..., 0]
    twin8 = file_bytes(Image.fromarray(eight), "PNG")
    twin16 = file_bytes(Image.fromarray(eight.astype(np.uint16) * 257), "PNG")
    assert np.array_equal(rgb_pixels(twin16, "x"), rgb_pixels(twin8, "x"))
    assert tf_jpeg(twin16, "x.png")[0] == tf_jpeg(twin8, "x.png")[0]


# The upright picture of stored pixels `a` [H, W, ...] for each EXIF orientation, from the
# EXIF specification's table, in numpy: 6 is turned 90 degrees clockwise to show it, 8
# counter-clockwise, 5 and 7 mirrored about a diagonal.
UPRIGHT = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1],
           4: lambda a: a[::-1], 5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1),
           7: lambda a: a[::-1, ::-1].swapaxes(0, 1), 8: lambda a: np.rot90(a, 1)}


def with_orientation(pixels, orientation, fmt="PNG"):
    """`pixels` stored with the EXIF orientation tag `orientation`."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt, exif=exif, **({"quality": 95}
                                                                 if fmt == "JPEG" else {}))
    return out.getvalue()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_gives_the_upright_picture(orientation):
    pixels = np.random.default_rng(orientation).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    decoded = decode_image(with_orientation(pixels, orientation), "photo.png")
    np.testing.assert_array_equal(np.asarray(decoded.pixels), UPRIGHT[orientation](pixels))
    assert decoded.size == (decoded.pixels.width, decoded.pixels.height)
    assert decoded.orientation == orientation
    np.testing.assert_array_equal(rgb_pixels(with_orientation(pixels, orientation), "p.png"),
                                  UPRIGHT[orientation](pixels))


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_a_rotated_jpeg_is_stored_upright(orientation):
    """TensorFlow ignores the tag: the stored JPEG is the upright picture, re-encoded; the
    file without the tag keeps its bytes."""
    pixels = np.random.default_rng(0).integers(0, 255, (32, 48, 3), dtype=np.uint8)
    tagged = with_orientation(pixels, orientation, "JPEG")
    stored = tf_jpeg(tagged, "photo.jpg")
    upright = UPRIGHT[orientation](np.asarray(decode_image(with_orientation(pixels, 1, "JPEG"),
                                                           "p.jpg").pixels))
    assert stored.reason == f"EXIF orientation {orientation}" and stored.orientation == orientation
    assert (stored.height, stored.width) == np.asarray(upright).shape[:2]
    # The upright pixels (the same JPEG decode, turned) re-encoded as the dataset does.
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(upright)).save(out, format="JPEG", quality=95)
    assert stored.jpeg == out.getvalue()
    plain = with_orientation(pixels, 1, "JPEG")
    assert tf_jpeg(plain, "photo.jpg").jpeg == plain
