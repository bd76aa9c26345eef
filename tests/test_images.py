"""Every stored image decodes with TF's JPEG decoder; unreadable ones are named."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from vww.images import UnreadableImageError, tf_jpeg


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
    ("RGB", "PNG", "PNG data under a JPEG name"),
    ("L", "PNG", "PNG data under a JPEG name"),
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
