"""The one image preprocessing of training, evaluation and calibration.

Slim's inception preprocessing as the TFLM guide runs it for mobilenet_v1 (fast mode):
- train: a random crop that keeps at least 10% of an object box (slim's distorted bounding
  box crop: aspect 3/4..4/3, 5-100% of the image), bilinear resize, random left-right
  flip, random brightness (32/255) and saturation (0.5-1.5), clip, grayscale, scale to
  [-1, 1];
- eval: central crop of 87.5%, bilinear resize, clip, grayscale, scale to [-1, 1].
Beside slim's eval preprocessing (the TFLM guide's protocol), `device_image` is what a board
computes: the camera's whole frame, 8-bit, no crop (see device_frame).
Random choices use stateless ops seeded per image, so a seed fixes every augmentation
whatever the number of parallel calls. Training runs in stages: `decode` (once per record
if the decoded images are cached), `train_crop` per image (the crop, and the image's draws
of flip, brightness and saturation), and `augment_batch` once per batch: the flip and the
color distortion are pixelwise, so one XLA-compiled loop over the batch does them with the
clip, grayscale and scaling, about ten times cheaper than TF's per-image ops.
"""

import tensorflow as tf

CENTRAL_FRACTION = 0.875
MIN_OBJECT_COVERED = 0.1
ASPECT_RATIO_RANGE = (0.75, 1.33)
AREA_RANGE = (0.05, 1.0)
MAX_ATTEMPTS = 100
BRIGHTNESS_DELTA = 32.0 / 255.0
SATURATION_RANGE = (0.5, 1.5)
# tf.image.rgb_to_grayscale's luma weights.
GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)


def resize(image, size):
    """slim's bilinear resize (TF1 semantics: no half-pixel centers) to [size, size]."""
    return tf.compat.v1.image.resize(image, [size, size],
                                     method=tf.compat.v1.image.ResizeMethod.BILINEAR)


def _model_input(red, green, blue, grayscale):
    """Color planes, in [0, 1] or beyond it -> the model's input: clipped, in luma if
    `grayscale`, scaled to [-1, 1]."""
    planes = [tf.clip_by_value(plane, 0.0, 1.0) for plane in (red, green, blue)]
    if grayscale:
        luma = sum(weight * plane for weight, plane in zip(GRAY_WEIGHTS, planes))
        return luma[..., tf.newaxis] * 2.0 - 1.0
    return tf.stack(planes, axis=-1) * 2.0 - 1.0


def finish(images, grayscale):
    """RGB [..., 3] -> the model's input (clip, grayscale if asked, scale to [-1, 1])."""
    return _model_input(*tf.unstack(images, num=3, axis=-1), grayscale)


def frame_input(frame, grayscale):
    """8-bit camera pixels [..., 1 (gray) or 3 (RGB)] -> the model's input, as `finish`
    computes it for those pixels: a gray value g counts as the RGB pixel (g, g, g). A
    board maps each pixel through this (the settings header's kPixelToInput table)."""
    pixels = tf.image.convert_image_dtype(frame, tf.float32)
    planes = tf.unstack(pixels, axis=-1)
    return _model_input(*(planes * 3 if len(planes) == 1 else planes), grayscale)


def decode(jpeg):
    """A stored JPEG as uint8 RGB pixels [H, W, 3] (what training may cache)."""
    return tf.io.decode_jpeg(jpeg, channels=3)


def random_crop_window(image_shape, boxes, seed):
    """(begin, size) of slim's distorted bounding box crop in an image of `image_shape`.

    `boxes` [N, 4] holds normalized (ymin, xmin, ymax, xmax) object boxes; with N = 0 the
    crop only has to cover 10% of the whole image (the op's implicit whole-image box).
    """
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        image_shape, bounding_boxes=boxes[tf.newaxis], seed=seed,
        min_object_covered=MIN_OBJECT_COVERED, aspect_ratio_range=ASPECT_RATIO_RANGE,
        area_range=AREA_RANGE, max_attempts=MAX_ATTEMPTS, use_image_if_no_bounding_boxes=True)
    return begin, crop_size


def train_crop(pixels, boxes, size, seed):
    """(image, draws) of decoded uint8 `pixels`: the random crop, resized to an RGB float
    image [size, size, 3], and the image's three uniform draws in [0, 1) for
    `augment_batch` (flip, brightness, saturation). `seed`, a shape-[2] int tensor, fixes
    them all. The crop is cut from the uint8 pixels, then converted: the same values as
    the TFLM guide's convert-then-crop, on fewer pixels."""
    crop_seed, draw_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    begin, crop_size = random_crop_window(tf.shape(pixels), boxes, crop_seed)
    image = resize(tf.image.convert_image_dtype(tf.slice(pixels, begin, crop_size),
                                                tf.float32), size)
    image.set_shape([size, size, 3])
    return image, tf.random.stateless_uniform([3], draw_seed)


# XLA fuses this into one loop over the batch; op by op it costs ~40x more.
@tf.function(jit_compile=True)
def augment_batch(images, draws, grayscale):
    """The model's inputs [N, size, size, C] in [-1, 1] from a batch of `train_crop`
    images [N, size, size, 3] and their draws [N, 3]: slim's random flip, brightness and
    saturation, in its order, then clip, grayscale if asked, scale."""
    # Per image, broadcast over its pixels.
    draws = draws[:, tf.newaxis, tf.newaxis, :]
    flip = draws[..., 0:1] < 0.5
    delta = (2.0 * draws[..., 1] - 1.0) * BRIGHTNESS_DELTA
    low, high = SATURATION_RANGE
    factor = low + (high - low) * draws[..., 2]
    images = tf.where(flip, tf.reverse(images, [2]), images)
    red, green, blue = [plane + delta for plane in tf.unstack(images, axis=-1)]
    # tf.image.adjust_saturation's HSV round trip in closed form. Hue and value (the max
    # channel) stay; the saturation spread / value is scaled and capped at 1, so each
    # channel c becomes value + k (c - value), k = min(factor, value / spread). A pixel
    # whose value is <= 0 has saturation 0 in TF's HSV and comes out gray (k = 0).
    value = tf.maximum(tf.maximum(red, green), blue)
    spread = value - tf.minimum(tf.minimum(red, green), blue)
    k = tf.maximum(0.0, tf.minimum(factor, tf.math.divide_no_nan(value, spread)))
    return _model_input(*[value + k * (plane - value) for plane in (red, green, blue)],
                        grayscale)


def train_image(jpeg, boxes, size, grayscale, seed):
    """One training image [size, size, C] in [-1, 1] (see train_crop, augment_batch)."""
    image, draws = train_crop(decode(jpeg), boxes, size, seed)
    return augment_batch(image[tf.newaxis], draws[tf.newaxis], grayscale)[0]


def device_frame(pixels, size, grayscale):
    """The 8-bit frame a camera module set to the model's input gives for a picture: uint8
    [size, size, 1 if grayscale else 3] from decoded uint8 RGB `pixels` [H, W, 3].

    The anchor is TFLM's person_detection example: its ESP32 port sets the camera to
    96x96 grayscale and hands the whole frame to the model, and its test images were
    made with `convert -resize 96x96!` (whole picture, aspect ratio not kept). So: no
    crop, luma (training's weights) for a grayscale model, an antialiased bilinear resize
    of the whole picture (a camera's scaler averages, as does ImageMagick's resize),
    rounded to 8 bits. A picture already [size, size] passes unchanged.
    """
    image = tf.cast(pixels, tf.float32)
    if grayscale:
        image = tf.tensordot(image, tf.constant(GRAY_WEIGHTS), 1)[..., tf.newaxis]
    image = tf.image.resize(image, [size, size], method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


def device_image(pixels, size, grayscale):
    """What the board feeds the model for decoded uint8 RGB `pixels`, as a float input
    [size, size, C] in [-1, 1]: device_frame, then frame_input."""
    return frame_input(device_frame(pixels, size, grayscale), grayscale)


def eval_image(jpeg, size, grayscale):
    """The central 87.5% of a JPEG, resized: [size, size, C] in [-1, 1]."""
    image = tf.image.convert_image_dtype(decode(jpeg), tf.float32)
    image = tf.image.central_crop(image, CENTRAL_FRACTION)
    return finish(resize(image, size), grayscale)


def device_stored_image(jpeg, size, grayscale):
    """The board's input for a stored JPEG: device_image of its pixels as stored."""
    return device_image(decode(jpeg), size, grayscale)


def whole_image_boxes(boxes):
    """No box: the random crop covers 10% of the whole image (slim's trainer passes no
    box, so the TFLM guide's crop is this)."""
    return tf.zeros([0, 4], tf.float32)


def object_boxes(boxes):
    """The stored object boxes: the random crop covers 10% of one of them (an image
    without one as whole_image_boxes)."""
    return boxes
