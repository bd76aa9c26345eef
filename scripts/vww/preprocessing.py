"""The one image preprocessing of training, evaluation and calibration.

Slim's inception preprocessing as the seed runs it for mobilenet_v1 (fast mode):
- train: a random crop that keeps at least 10% of an object box (slim's distorted bounding
  box crop: aspect 3/4..4/3, 5-100% of the image), bilinear resize, random left-right
  flip, random brightness (32/255) and saturation (0.5-1.5), grayscale, scale to [-1, 1];
- eval: central crop of 87.5%, bilinear resize, grayscale, scale to [-1, 1].
Random choices use stateless ops seeded per image, so a seed fixes every augmentation
whatever the number of parallel calls.
"""

import tensorflow as tf

CENTRAL_FRACTION = 0.875
MIN_OBJECT_COVERED = 0.1
ASPECT_RATIO_RANGE = (0.75, 1.33)
AREA_RANGE = (0.05, 1.0)
MAX_ATTEMPTS = 100
BRIGHTNESS_DELTA = 32.0 / 255.0
SATURATION_RANGE = (0.5, 1.5)
WHOLE_IMAGE = ((0.0, 0.0, 1.0, 1.0),)


def _resize(image, size):
    # slim's bilinear resize (TF1 semantics: no half-pixel centers).
    return tf.compat.v1.image.resize(image, [size, size],
                                     method=tf.compat.v1.image.ResizeMethod.BILINEAR)


def _finish(image, grayscale):
    """Grayscale if asked, then map [0, 1] to [-1, 1]."""
    if grayscale:
        image = tf.image.rgb_to_grayscale(image)
    return (image - 0.5) * 2.0


def train_image(jpeg, boxes, size, grayscale, seed):
    """A randomly cropped, flipped and color-distorted image, [size, size, C] in [-1, 1].

    `boxes` [N, 4] holds normalized (ymin, xmin, ymax, xmax) object boxes (N may be 0: the
    crop then only has to cover 10% of the whole image); `seed` is a shape-[2] int tensor.
    """
    crop_seed, flip_seed, brightness_seed, saturation_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 4))
    boxes = tf.cond(tf.shape(boxes)[0] > 0, lambda: boxes,
                    lambda: tf.constant(WHOLE_IMAGE, tf.float32))
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.image.extract_jpeg_shape(jpeg), bounding_boxes=boxes[tf.newaxis], seed=crop_seed,
        min_object_covered=MIN_OBJECT_COVERED, aspect_ratio_range=ASPECT_RATIO_RANGE,
        area_range=AREA_RANGE, max_attempts=MAX_ATTEMPTS, use_image_if_no_bounding_boxes=True)
    # Decoding only the crop window gives the same pixels as decode-then-crop, faster.
    window = tf.stack([begin[0], begin[1], crop_size[0], crop_size[1]])
    image = tf.image.decode_and_crop_jpeg(jpeg, window, channels=3)
    image = tf.image.convert_image_dtype(image, tf.float32)
    image = _resize(image, size)
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    image = tf.image.stateless_random_brightness(image, BRIGHTNESS_DELTA, brightness_seed)
    image = tf.image.stateless_random_saturation(image, *SATURATION_RANGE, saturation_seed)
    image = tf.clip_by_value(image, 0.0, 1.0)
    return _finish(image, grayscale)


def eval_image(jpeg, size, grayscale):
    """The central 87.5% of a JPEG, resized: [size, size, C] in [-1, 1]."""
    image = tf.image.convert_image_dtype(tf.io.decode_jpeg(jpeg, channels=3), tf.float32)
    image = tf.image.central_crop(image, CENTRAL_FRACTION)
    return _finish(_resize(image, size), grayscale)
