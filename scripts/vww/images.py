"""Make every stored image decodable by TensorFlow's JPEG decoder.

COCO holds a few files that are not baseline RGB/grayscale JPEG as stored: CMYK JPEGs
(TF's decoder cannot convert them) and PNG bytes under a .jpg name. Those are re-encoded;
images that cannot be read at all are reported to the caller, never stored.
"""

import io

import tensorflow as tf
from PIL import Image

# Pillow's encoder is deterministic for fixed settings, so re-encoded bytes are reproducible.
REENCODE_QUALITY = 95
_KEPT_JPEG_MODES = ("L", "RGB")
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")


class UnreadableImageError(ValueError):
    """The file is missing, truncated or not an image."""


def _tf_decodes(jpeg_bytes, height, width):
    try:
        shape = tf.io.decode_jpeg(jpeg_bytes, channels=3).shape
    except tf.errors.InvalidArgumentError:
        return False
    return tuple(shape[:2]) == (height, width)


def _reencode(image):
    mode = "L" if image.mode in _GRAY_MODES else "RGB"
    out = io.BytesIO()
    image.convert(mode).save(out, format="JPEG", quality=REENCODE_QUALITY)
    return out.getvalue()


def tf_jpeg(data, name):
    """Return (jpeg_bytes, height, width, reason) for the image bytes `data`.

    `reason` is None when the original bytes are kept, else why they were re-encoded.
    Raises UnreadableImageError (naming `name`) when the image cannot be decoded.
    """
    try:
        image = Image.open(io.BytesIO(data))
        image.load()  # a full decode catches truncated files, not just a bad header
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise UnreadableImageError(f"{name}: {err}") from err

    width, height = image.size
    if image.format != "JPEG":
        reason = f"{image.format} data under a JPEG name"
    elif image.mode not in _KEPT_JPEG_MODES:
        reason = f"{image.mode} JPEG"
    elif not _tf_decodes(data, height, width):
        reason = "JPEG that TensorFlow cannot decode"
    else:
        return data, height, width, None

    jpeg = _reencode(image)
    if not _tf_decodes(jpeg, height, width):
        raise UnreadableImageError(f"{name}: re-encoded JPEG still does not decode in TF")
    return jpeg, height, width, reason
