"""The frames the firmware scores, as 8-bit camera pixels, and their reference scores.

Two kinds: TFLM's own person_detection test frames, and val images as the board's camera
gives them (preprocessing.device_frame). The reference scores are LiteRT's and TFLM's
Python interpreter's on the device input of each frame (preprocessing.frame_input, then
the model's input quantization): what the firmware must print.
"""

import struct
from pathlib import Path

import numpy as np
import tensorflow as tf

from vww.data.records import named_damage, parse_example
from vww.export import micro
from vww.export.litert import input_int8, invoke
from vww.model import preprocessing

# In the TFLM tree: the person_detection example's test frames.
TEST_FRAMES = ("person", "no_person")
TEST_FRAMES_DIR = Path("tensorflow/lite/micro/examples/person_detection/testdata")


def read_bmp_gray(path):
    """The gray values [H, W] of an uncompressed 8-bit palette BMP (top row first)."""
    data = Path(path).read_bytes()
    if data[:2] != b"BM":
        raise ValueError("not a BMP file")
    offset, = struct.unpack_from("<I", data, 10)
    header_size, width, height, _, bits, compression = struct.unpack_from("<IiiHHI", data, 14)
    if bits != 8 or compression != 0:
        raise ValueError(f"{bits}-bit, compression {compression}: not an uncompressed 8-bit BMP")
    palette = np.frombuffer(data, np.uint8, 256 * 4, 14 + header_size).reshape(256, 4)
    if not (palette[:, 0] == palette[:, 1]).all() or not (palette[:, 1] == palette[:, 2]).all():
        raise ValueError("a color palette: not a grayscale BMP")
    row_bytes = (width + 3) // 4 * 4
    rows = np.frombuffer(data, np.uint8, row_bytes * abs(height), offset)
    indices = rows.reshape(abs(height), row_bytes)[:, :width]
    if height > 0:  # stored bottom row first
        indices = indices[::-1]
    return palette[indices, 0]


def tflm_test_frame(path):
    """A TFLM test frame as camera pixels [H, W]: its bytes are the int8 model input of
    TFLM's model stored as uint8, i.e. pixel p as p XOR 0x80 (the board's p - 128)."""
    return read_bmp_gray(path) ^ np.uint8(0x80)


def as_channels(gray, channels):
    """A gray frame [H, W] as [H, W, channels] (an RGB model sees gray as R = G = B)."""
    return np.repeat(gray[..., np.newaxis], channels, axis=2)


def val_frames(files, settings, count):
    """(file name, uint8 frame [S, S, C]) of the first `count` records of the val shards, as
    the board's camera gives them."""
    dataset = tf.data.TFRecordDataset(files).take(count).map(parse_example)
    with named_damage(files):
        for example in dataset:
            pixels = preprocessing.decode(example["image/encoded"])
            frame = preprocessing.device_frame(pixels, settings["image_size"],
                                               settings["grayscale"])
            yield example["image/filename"].numpy().decode(), frame.numpy()


def reference_scores(model, litert, frames):
    """[{"litert", "tflm_python"}] int8 scores of each uint8 frame [S, S, C]: the device
    input through LiteRT and through TFLM's Python interpreter."""
    tflm = micro.load(model)
    scores = []
    for frame in frames:
        grayscale = frame.shape[-1] == 1
        image = preprocessing.frame_input(tf.constant(frame), grayscale).numpy()
        int8_input = input_int8(litert, image[np.newaxis])
        scores.append({"litert": invoke(litert, int8_input).tolist(),
                       "tflm_python": micro.run(tflm, int8_input).tolist()})
    return scores
