"""Decode every image file one way, into 8 bits by what its values mean, and store it as a
JPEG that TensorFlow decodes, optionally smaller.

decode_image is the one decoder of image files: predict's device preprocessing takes its
pixels, and tf_jpeg, through which the dataset stage (COCO and image folders) stores every
image that training and evaluation read, re-encodes from them. eight_bit says how each
Pillow mode becomes 8-bit gray or RGB.

COCO holds a few files that are not baseline RGB/grayscale JPEG as stored: CMYK JPEGs
(TF's decoder cannot convert them) and PNG bytes under a .jpg name; image folders may hold
any format Pillow reads. Those are re-encoded; images that cannot be read at all are
reported to the caller, never stored.

A photo's EXIF orientation (a phone stores a portrait as landscape pixels with orientation
6 or 8) is applied when it is decoded, as every image viewer does: the picture is the one
that was shot, upright. TensorFlow's JPEG decoder ignores the tag, so such a JPEG is stored
re-encoded, upright. COCO's files carry none (orientation 1 or no EXIF): stored as they are.

With a maximum side, larger images are stored downscaled: training crops and resizes to
~96 px, so decoding 640 px JPEGs for every step is wasted work.
"""

import io
from typing import NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

# Pillow's encoder is deterministic for fixed settings, so re-encoded bytes are reproducible.
REENCODE_QUALITY = 95
NOT_AN_IMAGE = "not an image format Pillow reads"
# What Pillow raises for a file it recognizes but cannot open or decode.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)
_KEPT_MODES = ("L", "RGB")  # 8-bit gray and RGB: the pixels as they are
# 16-bit gray. Our Pillow (13) opens a 16-bit grayscale PNG as "I;16" (older versions: as
# 32-bit "I") and a 16-bit TIFF as "I;16" or "I;16B"; "I;16L" and "I;16N" are in-memory
# modes. "I" is 32-bit signed: its values are clipped to [0, 65535].
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA_MODES = ("LA", "La", "RGBA", "RGBa")  # "La", "RGBa": colour premultiplied by alpha


# EXIF's Orientation tag, and the transposition of the stored pixels that gives the upright
# picture for each of its values (the EXIF specification's table, as Pillow's
# ImageOps.exif_transpose); 1 (or none) is upright already.
EXIF_ORIENTATION = 0x0112
UPRIGHT = 1
_TRANSPOSES = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
               4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
               6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
               8: Image.Transpose.ROTATE_90}


class UnreadableImageError(ValueError):
    """The file is missing, truncated or not an image."""


class DecodedImage(NamedTuple):
    """An image file as decode_image returns it."""

    pixels: Image.Image  # 8-bit "L" or "RGB" (eight_bit), upright, maybe at a reduced scale
    format: str  # the file's format as Pillow names it: "JPEG", "PNG", ...
    mode: str  # the file's Pillow mode: "RGB", "CMYK", "I;16", ...
    size: tuple  # (width, height) of the upright picture
    stored_size: tuple  # (width, height) as stored: `size` scaled to the maximum side
    orientation: int  # the file's EXIF orientation (UPRIGHT without one)


class StoredImage(NamedTuple):
    """An image as the dataset stores it (tf_jpeg)."""

    jpeg: bytes  # what TensorFlow's decoder reads: the file's bytes, or re-encoded upright
    height: int
    width: int
    reason: str  # why the bytes were re-encoded, or None
    orientation: int  # the file's EXIF orientation, applied to the stored picture


def exif_orientation(image):
    """The EXIF orientation of an opened Pillow image, UPRIGHT when it has none (or one out
    of the specification's 1-8)."""
    orientation = image.getexif().get(EXIF_ORIENTATION, UPRIGHT)
    return orientation if orientation in _TRANSPOSES else UPRIGHT


def upright_size(size, orientation):
    """(width, height) of the upright picture of stored pixels of `size`."""
    return size[::-1] if orientation >= 5 else size


def _tf_decodes(jpeg_bytes, height, width):
    # Imported here: folder scans (vww.data.folders) use this module's Pillow part, and
    # importing TensorFlow would add 3 s to index_image_folder.
    import tensorflow as tf

    try:
        shape = tf.io.decode_jpeg(jpeg_bytes, channels=3).shape
    except tf.errors.InvalidArgumentError:
        return False
    return tuple(shape[:2]) == (height, width)


def _over_white(pixels, premultiplied):
    """The colour of uint8 `pixels` [H, W, C + 1] (alpha last) composited over white by alpha,
    as an image viewer shows it, rounded half up: [H, W, C], or [H, W] for gray."""
    color, alpha = pixels[..., :-1].astype(np.int32), pixels[..., -1:].astype(np.int32)
    if premultiplied:  # colour * alpha / 255 already
        out = np.minimum(color + 255 - alpha, 255)
    else:  # floor((c * a + 255 (255 - a) + 127.5) / 255), the dropped .5 crossing no multiple
        out = (color * alpha + 255 * (255 - alpha) + 127) // 255
    return out[..., 0] if out.shape[-1] == 1 else out


def eight_bit(image):
    """A decoded Pillow image in 8-bit "L" if its mode is gray, else in 8-bit "RGB", by what
    its values mean:
    - "L", "RGB": as they are (a PNG's tRNS colour key in these modes is ignored);
    - 16-bit gray ("I;16", "I;16B", "I;16L", "I;16N", and 32-bit "I" clipped to [0, 65535]):
      floor(v * 255 / 65535 + 0.5), the PNG specification's rounding, exact for an 8-bit
      image stored in 16 bits (v = 257 k -> k);
    - "F" (32-bit float): values taken as [0, 1]: floor(v * 255 + 0.5) clipped to [0, 255]
      (NaN as 0);
    - "1": 0 or 255;
    - with alpha ("LA", "RGBA", "PA", "P" with info["transparency"]; "La" and "RGBa", whose
      colour is premultiplied by alpha): composited over a white background by alpha, as
      an image viewer shows it, rounded half up (the colour of a transparent pixel is
      arbitrary, so it must not show);
    - "P" without transparency: its palette's colours, in RGB;
    - "CMYK": Pillow's R = (255 - C)(255 - K) / 255 (G from M, B from Y), rounded;
    - "YCbCr", "LAB", "HSV" (and "RGBX"): Pillow's conversion to RGB.
    """
    mode = image.mode
    if mode in _KEPT_MODES:
        return image
    if mode in _SIXTEEN_BIT_MODES:
        values = np.clip(np.asarray(image, np.int32), 0, 65535)
        # floor((v * 255 + 32767.5) / 65535) in integers: the dropped .5 never crosses a
        # multiple of 65535
        pixels = (values * 255 + 32767) // 65535
    elif mode == "F":
        values = np.nan_to_num(np.asarray(image, np.float64))
        pixels = np.clip(np.floor(values * 255 + 0.5), 0, 255)
    elif mode in _ALPHA_MODES:
        pixels = _over_white(np.asarray(image), premultiplied=mode in ("La", "RGBa"))
    elif mode == "PA" or (mode == "P" and "transparency" in image.info):
        pixels = _over_white(np.asarray(image.convert("RGBA")), premultiplied=False)
    else:
        return image.convert("L" if mode == "1" else "RGB")
    return Image.fromarray(pixels.astype(np.uint8))


def _reencode(pixels, size):
    if pixels.size != size:
        pixels = pixels.resize(size, Image.Resampling.BILINEAR)
    out = io.BytesIO()
    pixels.save(out, format="JPEG", quality=REENCODE_QUALITY)
    return out.getvalue()


def stored_size(width, height, max_image_side):
    """(width, height) scaled so the longer side is at most `max_image_side` (None: as is)."""
    scale = 1.0 if max_image_side is None else min(1.0, max_image_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def decode_image(data, name, max_image_side=None):
    """The image bytes `data` decoded in full, in 8 bits (eight_bit), upright (its EXIF
    orientation applied): a DecodedImage.

    Given `max_image_side`, a JPEG larger than its stored size may be decoded at a reduced
    scale no smaller than it. Raises UnreadableImageError naming `name` when Pillow cannot
    decode the bytes.
    """
    try:
        image = Image.open(io.BytesIO(data))
        orientation, size = exif_orientation(image), image.size
        stored = stored_size(*size, max_image_side)
        # DCT-domain downscaling of JPEGs to no less than the stored size: same result
        # for every run, several times faster than a full decode.
        image.draft(None, stored)
        image.load()  # a full decode catches truncated files, not just a bad header
        pixels = eight_bit(image)
        if orientation != UPRIGHT:
            pixels = pixels.transpose(_TRANSPOSES[orientation])
    except UnidentifiedImageError as err:
        raise UnreadableImageError(f"{name}: {NOT_AN_IMAGE}") from err
    except DECODE_ERRORS as err:
        raise UnreadableImageError(f"{name}: {err}") from err
    return DecodedImage(pixels, image.format, image.mode, upright_size(size, orientation),
                        upright_size(stored, orientation), orientation)


def rgb_pixels(data, name):
    """The image bytes `data` decoded in full (decode_image: upright), as uint8 RGB pixels
    [H, W, 3] (a gray image's value in all three), with no re-encoding. Raises
    UnreadableImageError naming `name`."""
    return np.asarray(decode_image(data, name).pixels.convert("RGB"))


def tf_jpeg(data, name, max_image_side=None):
    """The image bytes `data` as the dataset stores them: a StoredImage.

    Images whose longer side exceeds `max_image_side` are stored downscaled to it (aspect kept).
    `reason` is None when the original bytes are kept or only downscaled, else why the
    format or the EXIF orientation forced a re-encode. Re-encoded images are decode_image's
    8-bit upright pixels. Raises UnreadableImageError (naming `name`) when the image cannot
    be decoded.
    """
    image = decode_image(data, name, max_image_side)
    width, height = image.stored_size
    if image.format != "JPEG":
        reason = f"{image.format} data, not JPEG"
    elif image.mode not in _KEPT_MODES:
        reason = f"{image.mode} JPEG"
    elif image.orientation != UPRIGHT:
        reason = f"EXIF orientation {image.orientation}"
    elif image.stored_size != image.size:
        reason = None  # only downscaled
    elif _tf_decodes(data, height, width):
        return StoredImage(data, height, width, None, UPRIGHT)
    else:
        reason = "JPEG that TensorFlow cannot decode"

    jpeg = _reencode(image.pixels, image.stored_size)
    if not _tf_decodes(jpeg, height, width):
        raise UnreadableImageError(f"{name}: re-encoded JPEG still does not decode in TF")
    return StoredImage(jpeg, height, width, reason, image.orientation)
