"""The TFRecord layout: slim-compatible tf.train.Example features and shard naming."""

import hashlib

import tensorflow as tf

# Features as slim's Visual Wake Words build writes them (and its readers expect).
FEATURES = {
    "image/encoded": tf.io.FixedLenFeature((), tf.string),
    "image/format": tf.io.FixedLenFeature((), tf.string),
    "image/class/label": tf.io.FixedLenFeature((), tf.int64),
    "image/height": tf.io.FixedLenFeature((), tf.int64),
    "image/width": tf.io.FixedLenFeature((), tf.int64),
    "image/filename": tf.io.FixedLenFeature((), tf.string),
    "image/source_id": tf.io.FixedLenFeature((), tf.string),
    "image/key/sha256": tf.io.FixedLenFeature((), tf.string),
    "image/object/bbox/xmin": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/xmax": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/ymin": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/ymax": tf.io.VarLenFeature(tf.float32),
    "image/object/area": tf.io.VarLenFeature(tf.float32),
}


def shard_name(split, shard, num_shards):
    return f"{split}.record-{shard:05d}-of-{num_shards:05d}"


def shard_images(images, shard, num_shards):
    """The images of one shard: round-robin over the id-sorted list.

    Round-robin spreads both classes and all image sizes evenly over the shards, and the
    assignment depends only on the sorted list, so every image lands in exactly one shard.
    """
    return images[shard::num_shards]


def _bytes(values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _ints(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def _floats(values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def _clip01(value):
    return min(1.0, max(0.0, value))


def serialize_example(image, jpeg, height, width):
    """One serialized Example for a VWW image entry and its (TF-decodable) JPEG bytes.

    Boxes are normalized by the stored image's size and clipped to [0, 1], as the
    distorted-bounding-box crop of training expects.
    """
    boxes = [obj["bbox"] for obj in image["objects"]]
    feature = {
        "image/encoded": _bytes([jpeg]),
        "image/format": _bytes([b"jpeg"]),
        "image/class/label": _ints([image["label"]]),
        "image/height": _ints([height]),
        "image/width": _ints([width]),
        "image/filename": _bytes([image["file_name"].encode()]),
        "image/source_id": _bytes([str(image["id"]).encode()]),
        "image/key/sha256": _bytes([hashlib.sha256(jpeg).hexdigest().encode()]),
        "image/object/bbox/xmin": _floats([_clip01(x / width) for x, _, _, _ in boxes]),
        "image/object/bbox/xmax": _floats([_clip01((x + w) / width) for x, _, w, _ in boxes]),
        "image/object/bbox/ymin": _floats([_clip01(y / height) for _, y, _, _ in boxes]),
        "image/object/bbox/ymax": _floats([_clip01((y + h) / height) for _, y, _, h in boxes]),
        "image/object/area": _floats([obj["area"] for obj in image["objects"]]),
    }
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    # deterministic=True sorts the feature map, so the bytes never depend on the runtime.
    return example.SerializeToString(deterministic=True)


def parse_example(serialized):
    """Parse one serialized Example into a dict of tensors (sparse boxes made dense)."""
    parsed = tf.io.parse_single_example(serialized, FEATURES)
    return {
        key: tf.sparse.to_dense(value) if isinstance(value, tf.SparseTensor) else value
        for key, value in parsed.items()
    }
