"""The TFRecord layout: slim-compatible tf.train.Example features and shard naming."""

import hashlib
import re
from contextlib import contextmanager
from pathlib import Path

import tensorflow as tf

from vww.base.cli import InputError, snakemake_command

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


_SHARD_NAME = re.compile(r"(?P<split>.+)\.record-(?P<shard>\d{5})-of-(?P<num_shards>\d{5})")


class ShardSetError(InputError):
    """The files given as a split's shards are not exactly one split's complete set."""


def shard_name(split, shard, num_shards):
    return f"{split}.record-{shard:05d}-of-{num_shards:05d}"


def shard_set(paths):
    """(split, paths in shard order) of the shard files `paths`, which must be exactly
    the shards 0..N-1 of N of one split: never a mix of two shard counts or splits (stale
    files of an earlier configuration), never a set with a shard missing."""
    if not paths:
        raise ShardSetError("--records", "no TFRecord shard given")
    parsed = {}
    for path in map(Path, paths):
        match = _SHARD_NAME.fullmatch(path.name)
        if not match:
            raise ShardSetError(path, f"not a shard name ({shard_name('SPLIT', 0, 1)})")
        if not path.is_file():
            raise ShardSetError(path, "no such file")
        parsed[path] = (match["split"], int(match["shard"]), int(match["num_shards"]))
    folder = sorted(parsed)[0].parent
    kinds = sorted({(split, n) for split, _, n in parsed.values()})
    if len(kinds) > 1:
        raise ShardSetError(folder, "shards of different sets mixed: " + ", ".join(
            shard_name(split, 0, n).replace("00000-of", "*-of") for split, n in kinds))
    (split, num_shards), = kinds
    have = sorted(shard for _, shard, _ in parsed.values())
    if have != list(range(num_shards)):
        missing = sorted(set(range(num_shards)) - set(have))
        raise ShardSetError(folder, f"{len(have)} shard files given for a set of {num_shards} "
                            f"{split} shards; missing: "
                            + (", ".join(shard_name(split, i, num_shards) for i in missing)
                               or "none, but some given twice"))
    return split, sorted(parsed, key=lambda p: parsed[p][1])


class DamagedShardError(InputError):
    """A shard's bytes are not what the dataset stage wrote: truncated or changed."""


def rebuild_shard():
    """What to do about a damaged shard: the command that rebuilds it, with the config of the
    workflow run this process is a job of (`snakemake verify` lists every damaged file)."""
    return f"rebuild it (the same bytes): {snakemake_command(config={'repair': True})}"


def check_shard_digests(digests, expected, source):
    """Raise DamagedShardError for the first shard whose sha256 in {path: sha256} `digests`
    differs from the dataset's record of it, `expected` ({shard name: sha256} from
    `source`)."""
    for path, digest in sorted(digests.items()):
        name = Path(path).name
        if name not in expected:
            raise DamagedShardError(path, f"not a shard of the dataset {source} describes")
        if digest != expected[name]:
            raise DamagedShardError(path, f"its sha256 differs from the one {source} records "
                                          f"(damaged since it was written): {rebuild_shard()}")


def first_damaged_record(files):
    """(file, record number from 0, TensorFlow's words, with the byte offset) of the first
    record of `files` that cannot be read, or None. Reads every record's framing and
    checksum, decodes nothing."""
    for path in files:
        count = 0
        try:
            # A plain Python reader: callers may be in graph mode, where tf.data won't iterate.
            for _ in tf.compat.v1.io.tf_record_iterator(str(path)):
                count += 1
        except tf.errors.DataLossError as err:
            # The words that matter, without the op and function names around them.
            words = re.search(r"(corrupted|truncated) record at \d+", err.message)
            return path, count, words[0] if words else err.message
    return None


@contextmanager
def named_damage(files):
    """Turn TensorFlow's DataLossError ("corrupted record at 205360", naming no file) while
    reading the shard `files` into a DamagedShardError naming the file, the record and the
    remedy."""
    try:
        yield
    except tf.errors.DataLossError as err:
        found = first_damaged_record(files)
        if found is None:
            raise
        path, record, problem = found
        raise DamagedShardError(path, f"damaged at record {record} ({problem}): "
                                      f"{rebuild_shard()}") from err


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


def normalized_boxes(image):
    """{xmin, xmax, ymin, ymax: [fractions]} of a VWW image entry's object boxes.

    COCO's boxes ([x, y, w, h]) are in pixels of the original image, so they are divided
    by the original size the annotations give, whatever size the image is stored at;
    then clipped to [0, 1], as the distorted-bounding-box crop of training expects.
    """
    boxes = [obj["bbox"] for obj in image["objects"]]
    if not boxes:  # image folders carry no boxes (nor the original size)
        return {"xmin": [], "xmax": [], "ymin": [], "ymax": []}
    width, height = image["width"], image["height"]
    return {
        "xmin": [_clip01(x / width) for x, _, _, _ in boxes],
        "xmax": [_clip01((x + w) / width) for x, _, w, _ in boxes],
        "ymin": [_clip01(y / height) for _, y, _, _ in boxes],
        "ymax": [_clip01((y + h) / height) for _, y, _, h in boxes],
    }


# How a point (x, y) of the stored pixels, as fractions of their width and height, moves
# in the upright picture, for each EXIF orientation but upright (vww.data.images): the
# transposition images._TRANSPOSES applies to the pixels.
_ORIENTED_POINTS = {
    2: lambda x, y: (1 - x, y), 3: lambda x, y: (1 - x, 1 - y), 4: lambda x, y: (x, 1 - y),
    5: lambda x, y: (y, x), 6: lambda x, y: (1 - y, x), 7: lambda x, y: (1 - y, 1 - x),
    8: lambda x, y: (y, 1 - x),
}


def oriented_boxes(boxes, orientation):
    """normalized_boxes' boxes of the stored pixels, in the upright picture of an image of
    EXIF orientation `orientation` (as tf_jpeg stores it)."""
    if orientation not in _ORIENTED_POINTS:
        return boxes
    move = _ORIENTED_POINTS[orientation]
    corners = [(move(x0, y0), move(x1, y1)) for x0, x1, y0, y1
               in zip(boxes["xmin"], boxes["xmax"], boxes["ymin"], boxes["ymax"])]
    return {"xmin": [min(a[0], b[0]) for a, b in corners],
            "xmax": [max(a[0], b[0]) for a, b in corners],
            "ymin": [min(a[1], b[1]) for a, b in corners],
            "ymax": [max(a[1], b[1]) for a, b in corners]}


def serialize_example(image, jpeg, height, width, orientation=1):
    """One serialized Example for a VWW image entry, its (TF-decodable) stored JPEG bytes
    and their size; boxes as normalized_boxes gives them, turned upright as the stored
    picture is (the file's EXIF orientation, see oriented_boxes)."""
    feature = {
        "image/encoded": _bytes([jpeg]),
        "image/format": _bytes([b"jpeg"]),
        "image/class/label": _ints([image["label"]]),
        "image/height": _ints([height]),
        "image/width": _ints([width]),
        "image/filename": _bytes([image["file_name"].encode()]),
        "image/source_id": _bytes([str(image["id"]).encode()]),
        "image/key/sha256": _bytes([hashlib.sha256(jpeg).hexdigest().encode()]),
        **{f"image/object/bbox/{key}": _floats(values)
           for key, values in oriented_boxes(normalized_boxes(image), orientation).items()},
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
