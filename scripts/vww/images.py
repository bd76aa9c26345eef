"""Make every stored image decodable by TensorFlow's JPEG decoder, optionally smaller.

COCO holds a few files that are not baseline RGB/grayscale JPEG as stored: CMYK JPEGs
(TF's decoder cannot convert them) and PNG bytes under a .jpg name; image folders may hold
PNGs. Those are re-encoded; images that cannot be read at all are reported to the caller,
never stored. With a maximum side, larger images are stored downscaled: training crops and
resizes to ~96 px, so decoding 640 px JPEGs for every step is wasted work.
"""

import io

import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

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


def _eight_bit(image):
    """The image in 8-bit gray ("L") if it is gray in any mode, else in 8-bit RGB."""
    return image.convert("L" if image.mode in _GRAY_MODES else "RGB")


def _reencode(image, size):
    image = _eight_bit(image)
    if image.size != size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=REENCODE_QUALITY)
    return out.getvalue()


def stored_size(width, height, max_image_side):
    """(width, height) scaled so the longer side is at most `max_image_side` (None: as is)."""
    scale = 1.0 if max_image_side is None else min(1.0, max_image_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _decode(data, name, max_image_side=None):
    """(decoded Pillow image, stored size) of the image bytes `data`; a JPEG larger than
    the stored size may be decoded at a reduced scale no smaller than it."""
    try:
        image = Image.open(io.BytesIO(data))
        size = stored_size(*image.size, max_image_side)
        # DCT-domain downscaling of JPEGs to no less than the stored size: same result
        # for every run, several times faster than a full decode.
        image.draft(None, size)
        image.load()  # a full decode catches truncated files, not just a bad header
    except UnidentifiedImageError as err:
        raise UnreadableImageError(f"{name}: not an image format Pillow reads") from err
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise UnreadableImageError(f"{name}: {err}") from err
    return image, size


def rgb_pixels(data, name):
    """The image bytes `data` decoded in full, as uint8 RGB pixels [H, W, 3] (a gray image's
    value in all three), with no re-encoding. Raises UnreadableImageError naming `name`."""
    image, _ = _decode(data, name)
    return np.asarray(_eight_bit(image).convert("RGB"))


def tf_jpeg(data, name, max_image_side=None):
    """Return (jpeg_bytes, height, width, reason) for the image bytes `data`.

    Images whose longer side exceeds `max_image_side` are stored downscaled to it (aspect kept).
    `reason` is None when the original bytes are kept or only downscaled, else why the
    format forced a re-encode. Raises UnreadableImageError (naming `name`) when the image
    cannot be decoded.
    """
    image, size = _decode(data, name, max_image_side)
    width, height = size
    if image.format != "JPEG":
        reason = f"{image.format} data, not JPEG"
    elif image.mode not in _KEPT_JPEG_MODES:
        reason = f"{image.mode} JPEG"
    elif size == image.size and not _tf_decodes(data, height, width):
        reason = "JPEG that TensorFlow cannot decode"
    elif size == image.size:
        return data, height, width, None
    else:
        reason = None

    jpeg = _reencode(image, size)
    if not _tf_decodes(jpeg, height, width):
        raise UnreadableImageError(f"{name}: re-encoded JPEG still does not decode in TF")
    return jpeg, height, width, reason
