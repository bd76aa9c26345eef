"""The shared preprocessing: shapes, ranges, seeding, and the crop-window decode."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from vww.model import preprocessing


def jpeg(width=200, height=150, mode="RGB"):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(out, format="JPEG", quality=90)
    return tf.constant(out.getvalue())


BOXES = tf.constant([[0.1, 0.2, 0.6, 0.7]], tf.float32)
NO_BOXES = tf.zeros([0, 4], tf.float32)


@pytest.mark.parametrize("grayscale,channels", [(True, 1), (False, 3)])
@pytest.mark.parametrize("boxes", [BOXES, NO_BOXES])
def test_train_image_shape_and_range(grayscale, channels, boxes):
    for index in range(5):
        image = preprocessing.train_image(jpeg(), boxes, 96, grayscale,
                                          tf.constant([0, index], tf.int64)).numpy()
        assert image.shape == (96, 96, channels)
        assert image.min() >= -1.0 and image.max() <= 1.0
        assert image.std() > 0.05


def test_train_image_is_fixed_by_its_seed():
    seed = tf.constant([3, 7], tf.int64)
    first = preprocessing.train_image(jpeg(), BOXES, 96, True, seed).numpy()
    again = preprocessing.train_image(jpeg(), BOXES, 96, True, seed).numpy()
    other = preprocessing.train_image(jpeg(), BOXES, 96, True,
                                      tf.constant([3, 8], tf.int64)).numpy()
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_eval_image_is_central_crop_resize_gray(mode):
    data = jpeg(mode=mode)
    image = preprocessing.eval_image(data, 96, True).numpy()
    assert image.shape == (96, 96, 1)
    assert -1.0 <= image.min() and image.max() <= 1.0
    # The same computation spelled out: central 87.5%, TF1 bilinear resize, luma, [-1, 1].
    pixels = tf.image.convert_image_dtype(tf.io.decode_jpeg(data, channels=3), tf.float32)
    height, width = pixels.shape[:2]
    top, left = int((height - height * 0.875) / 2), int((width - width * 0.875) / 2)
    crop = pixels[top:height - top, left:width - left]
    resized = tf.compat.v1.image.resize_bilinear(crop[tf.newaxis], [96, 96])[0]
    expected = (tf.image.rgb_to_grayscale(resized).numpy() - 0.5) * 2.0
    np.testing.assert_allclose(image, expected, atol=1e-6)


def test_train_crop_cuts_the_window_the_seed_would():
    # Cutting uint8 pixels then converting equals the TFLM guide's convert-then-cut, and the
    # window is slim's distorted box for that seed.
    pixels = preprocessing.decode(jpeg(width=321, height=217))
    seed = tf.constant([5, 9], tf.int64)
    crop_seed, draw_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    begin, size = preprocessing.random_crop_window(tf.shape(pixels), BOXES, crop_seed)
    window = tf.image.convert_image_dtype(pixels, tf.float32)[
        begin[0]:begin[0] + size[0], begin[1]:begin[1] + size[1]]
    image, draws = preprocessing.train_crop(pixels, BOXES, 96, seed)
    assert np.array_equal(image.numpy(), preprocessing.resize(window, 96).numpy())
    assert np.array_equal(draws.numpy(), tf.random.stateless_uniform([3], draw_seed).numpy())


@pytest.mark.parametrize("grayscale", [True, False])
def test_augment_batch_is_the_seeds_image_ops(grayscale):
    # One XLA loop over the batch must give what slim's per-image ops give: flip,
    # brightness, saturation (TF's HSV kernel), clip, grayscale, scale. The images cover
    # gray, black, white and pure colors, and brightness pushes values out of [0, 1].
    rng = np.random.default_rng(4)
    images = np.concatenate([
        rng.uniform(0, 1, (24, 32, 32, 3)),
        rng.integers(0, 2, (4, 32, 32, 3)),
        np.repeat(rng.uniform(0, 1, (4, 32, 32, 1)), 3, axis=-1),
    ]).astype(np.float32)
    draws = rng.uniform(0, 1, (len(images), 3)).astype(np.float32)
    draws[:4, 1] = [0.0, 0.999, 0.0, 0.999]  # the extreme brightness deltas
    expected = []
    for image, (flip, brightness, saturation) in zip(images, draws):
        if flip < 0.5:
            image = tf.image.flip_left_right(image)
        image = tf.image.adjust_brightness(
            image, (2 * brightness - 1) * preprocessing.BRIGHTNESS_DELTA)
        image = tf.image.adjust_saturation(image, 0.5 + saturation)
        image = tf.clip_by_value(image, 0.0, 1.0)
        if grayscale:
            image = tf.image.rgb_to_grayscale(image)
        expected.append((image.numpy() - 0.5) * 2.0)
    got = preprocessing.augment_batch(images, draws, grayscale).numpy()
    assert got.shape == (len(images), 32, 32, 1 if grayscale else 3)
    assert (draws[:, 0] < 0.5).any() and (draws[:, 0] >= 0.5).any()
    np.testing.assert_allclose(got, np.stack(expected), atol=3e-6)


def pil_device_frame(pixels, size):
    """Pillow's computation of a camera's gray frame before rounding to 8 bits: luma with
    training's weights, then Pillow's bilinear resize (antialiased when it shrinks)."""
    luma = pixels.astype(np.float32) @ np.array(preprocessing.GRAY_WEIGHTS, np.float32)
    return np.asarray(Image.fromarray(luma, "F").resize((size, size),
                                                        Image.Resampling.BILINEAR))


@pytest.mark.parametrize("height,width", [(480, 640), (640, 480), (192, 144), (96, 96)])
def test_device_frame_is_the_whole_picture_in_gray_resized(height, width):
    """The whole picture, squeezed to 96x96 (no crop), as Pillow computes it; a 96x96 gray
    picture (TFLM's test images) passes unchanged."""
    pixels = np.random.default_rng(height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    frame = preprocessing.device_frame(tf.constant(pixels), 96, grayscale=True).numpy()
    assert frame.dtype == np.uint8 and frame.shape == (96, 96, 1)
    exact = pil_device_frame(pixels, 96)
    # Equal after rounding, but where Pillow's value is within float noise of a .5: there
    # the two sums of the same weights may round either way.
    tie = np.abs(exact - np.floor(exact) - 0.5) < 1e-3
    np.testing.assert_array_equal(frame[..., 0][~tie], np.round(exact[~tie]))
    assert np.all(np.abs(frame[..., 0][tie] - exact[tie]) <= 0.5 + 1e-3)
    gray = np.repeat(pixels[:96, :96, :1], 3, axis=2)
    passed = preprocessing.device_frame(tf.constant(gray), 96, grayscale=True).numpy()
    np.testing.assert_array_equal(passed[..., 0], gray[..., 0])


def test_device_frame_of_an_rgb_model_keeps_the_channels():
    pixels = np.random.default_rng(5).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    frame = preprocessing.device_frame(tf.constant(pixels), 96, grayscale=False).numpy()
    np.testing.assert_array_equal(frame, pixels)


@pytest.mark.parametrize("grayscale", [True, False])
def test_frame_input_is_finish_of_the_same_pixels(grayscale):
    """A gray value g gives what `finish` gives for the RGB pixel (g, g, g)."""
    values = np.arange(256, dtype=np.uint8)
    frame = values[:, np.newaxis] if grayscale else np.stack([values] * 3, axis=1)
    rgb = tf.image.convert_image_dtype(np.stack([values] * 3, axis=1), tf.float32)
    np.testing.assert_array_equal(
        preprocessing.frame_input(tf.constant(frame), grayscale).numpy(),
        preprocessing.finish(rgb, grayscale).numpy())
