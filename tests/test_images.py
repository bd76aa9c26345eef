"""Every stored image decodes with TF's JPEG decoder; unreadable ones are named."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from vww.images import UnreadableImageError, stored_size, tf_jpeg


def encoded(mode, fmt="JPEG", size=(48, 32)):
    pixels = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_baseline_jpeg_is_kept_as_is(mode):
    data = encoded(mode)
    assert tf_jpeg(data, "x.jpg") == (data, 32, 48, None)


@pytest.mark.parametrize("mode,fmt,reason", [
    ("CMYK", "JPEG", "CMYK JPEG"),
    ("RGB", "PNG", "PNG data, not JPEG"),
    ("L", "PNG", "PNG data, not JPEG"),
])
def test_odd_images_are_reencoded_to_decodable_jpeg(mode, fmt, reason):
    data = encoded(mode, fmt)
    jpeg, height, width, why = tf_jpeg(data, "x.jpg")
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
    jpeg, height, width, _ = tf_jpeg(data, "x.jpg", max_image_side=192)
    assert (width, height) == (192, 128)  # aspect kept: 427 * 192 / 640 = 128.1
    assert tf.io.decode_jpeg(jpeg, channels=3).shape == (128, 192, 3)
    assert tf_jpeg(data, "x.jpg", max_image_side=192)[0] == jpeg  # deterministic


def test_downscaled_image_keeps_the_picture():
    # a left-dark, right-bright picture stays so after the DCT-domain and bilinear scaling
    pixels = np.zeros((480, 640, 3), np.uint8)
    pixels[:, 320:] = 200
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=95)
    jpeg, _, _, _ = tf_jpeg(out.getvalue(), "x.jpg", max_image_side=96)
    small = tf.io.decode_jpeg(jpeg).numpy().astype(int)
    assert small.shape == (72, 96, 3)
    assert abs(small[:, :40].mean() - 0) < 4 and abs(small[:, 56:].mean() - 200) < 4


def test_small_images_keep_their_bytes():
    data = encoded("RGB", size=(150, 100))
    assert tf_jpeg(data, "x.jpg", max_image_side=192) == (data, 100, 150, None)


@pytest.mark.parametrize("size,max_image_side,expected", [
    ((640, 480), 192, (192, 144)), ((480, 640), 192, (144, 192)), ((192, 100), 192, (192, 100)),
    ((1000, 3), 192, (192, 1)), ((640, 480), None, (640, 480)),
])
def test_stored_size(size, max_image_side, expected):
    assert stored_size(*size, max_image_side) == expected
