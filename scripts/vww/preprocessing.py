"""The one image preprocessing of training, evaluation and calibration.

Slim's inception preprocessing as the seed runs it for mobilenet_v1 (fast mode):
- train: a random crop that keeps at least 10% of an object box (slim's distorted bounding
  box crop: aspect 3/4..4/3, 5-100% of the image), bilinear resize, random left-right
  flip, random brightness (32/255) and saturation (0.5-1.5), grayscale, scale to [-1, 1];
- eval: central crop of 87.5%, bilinear resize, grayscale, scale to [-1, 1].
Random choices use stateless ops seeded per image, so a seed fixes every augmentation
whatever the number of parallel calls. Training splits the work in three stages: `decode`
(once per record if the decoded images are cached), `train_crop` per image, and `finish`
(clip, grayscale, scale: elementwise, so once per batch).
"""

import tensorflow as tf

CENTRAL_FRACTION = 0.875
MIN_OBJECT_COVERED = 0.1
ASPECT_RATIO_RANGE = (0.75, 1.33)
AREA_RANGE = (0.05, 1.0)
MAX_ATTEMPTS = 100
BRIGHTNESS_DELTA = 32.0 / 255.0
SATURATION_RANGE = (0.5, 1.5)


def _resize(image, size):
    # slim's bilinear resize (TF1 semantics: no half-pixel centers).
    return tf.compat.v1.image.resize(image, [size, size],
                                     method=tf.compat.v1.image.ResizeMethod.BILINEAR)


def finish(images, grayscale):
    """RGB in [0, 1] (brightness may have pushed it out) -> the model's input in [-1, 1]:
    clip, grayscale if asked, scale. One image [H, W, 3] or a batch [N, H, W, 3]."""
    images = tf.clip_by_value(images, 0.0, 1.0)
    if grayscale:
        images = tf.image.rgb_to_grayscale(images)
    return (images - 0.5) * 2.0


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


def distort(image, seed):
    """Random flip, brightness and saturation of an RGB float image (the color is not
    clipped here: `finish` does it)."""
    flip_seed, brightness_seed, saturation_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 3))
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    image = tf.image.stateless_random_brightness(image, BRIGHTNESS_DELTA, brightness_seed)
    return tf.image.stateless_random_saturation(image, *SATURATION_RANGE, saturation_seed)


def train_crop(pixels, boxes, size, seed):
    """A randomly cropped, flipped and color-distorted RGB float image [size, size, 3] of
    decoded uint8 `pixels`, before `finish`. `seed`, a shape-[2] int tensor, fixes every
    random choice. The crop is cut from the uint8 pixels, then converted: the same values
    as the seed's convert-then-crop, on fewer pixels."""
    crop_seed, distort_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    begin, crop_size = random_crop_window(tf.shape(pixels), boxes, crop_seed)
    image = tf.image.convert_image_dtype(tf.slice(pixels, begin, crop_size), tf.float32)
    return distort(_resize(image, size), distort_seed)


def train_image(jpeg, boxes, size, grayscale, seed):
    """One training image [size, size, C] in [-1, 1] (see train_crop)."""
    return finish(train_crop(decode(jpeg), boxes, size, seed), grayscale)


def eval_image(jpeg, size, grayscale):
    """The central 87.5% of a JPEG, resized: [size, size, C] in [-1, 1]."""
    image = tf.image.convert_image_dtype(decode(jpeg), tf.float32)
    image = tf.image.central_crop(image, CENTRAL_FRACTION)
    return finish(_resize(image, size), grayscale)
