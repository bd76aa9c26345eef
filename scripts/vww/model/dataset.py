"""tf.data input pipelines over the VWW TFRecords, for training and evaluation."""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from vww.data.records import FEATURES, ShardSetError, named_damage, parse_example, shard_set
from vww.model import preprocessing, registry

AUTOTUNE = tf.data.AUTOTUNE
# Epoch seeds of two stream seeds never meet before this many epochs (COCO's 1 M steps
# are ~1,200).
EPOCHS_PER_SEED = 1_000_000


def record_files(paths, split):
    """The shard files `paths` (exactly the files a caller names, never a folder's glob,
    so stale shards of an earlier configuration cannot join), in shard order, as strings.

    Raises ShardSetError unless they are the complete set of one shard count of `split`.
    """
    found_split, files = shard_set(paths)
    if found_split != split:
        raise ShardSetError(files[0], f"a {found_split} shard where {split} shards are needed")
    return [str(path) for path in files]


def decoded_bytes(files):
    """Bytes the records' images take decoded (height x width x 3 each): what caching them
    costs. Reads only the size features, not the pixels."""
    sizes = {key: FEATURES[key] for key in ("image/height", "image/width")}

    def image_bytes(serialized):
        size = tf.io.parse_single_example(serialized, sizes)
        return size["image/height"] * size["image/width"] * 3

    total = tf.data.TFRecordDataset(files).map(image_bytes, num_parallel_calls=AUTOTUNE)
    with named_damage(files):
        return int(total.reduce(tf.constant(0, tf.int64), lambda a, b: a + b))


def count_records(files):
    """The number of records in the shard `files` (reads them, decodes nothing)."""
    with named_damage(files):
        return int(tf.data.TFRecordDataset(files).reduce(tf.constant(0, tf.int64),
                                                         lambda count, _: count + 1))


def add_records_argument(parser, split):
    parser.add_argument("--records", nargs="+", required=True, metavar="SHARD",
                        help=f"every {split}.record-NNNNN-of-MMMMM shard of the split, "
                             f"e.g. records/{split}.record-*")


def _boxes(example):
    """Object boxes as slim's crop wants them: [N, 4] (ymin, xmin, ymax, xmax)."""
    return tf.stack([example[f"image/object/bbox/{k}"] for k in ("ymin", "xmin", "ymax", "xmax")],
                    axis=1)


def pipeline_options(deterministic, threads):
    """tf.data options of a training pipeline: order kept if `deterministic`; `threads`
    (0: TF's default, one per core) sizes its own thread pool."""
    options = tf.data.Options()
    options.deterministic = deterministic
    # One op per image at a time: images are small, so splitting one over threads costs
    # more than it gains, and the pipeline then competes less with the training step.
    options.threading.max_intra_op_parallelism = 1
    if threads:
        options.threading.private_threadpool_size = threads
    return options


def record_seed(seed, index):
    """The stateless seed of the record at position `index` of a stream seeded `seed`."""
    return tf.stack([tf.cast(seed, tf.int64), index])


def decoded_examples(files, settings, seed):
    """One pass over the records as (uint8 pixels, boxes, label), in an order fixed by
    `seed` (shards shuffled once, then interleaved), the same at every pass; with
    settings["cache_images"] the decoded images stay in memory after the first pass, so
    later passes decode nothing."""
    shards = tf.data.Dataset.from_tensor_slices(files).shuffle(
        len(files), seed=seed, reshuffle_each_iteration=False)
    records = shards.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 8),
                                num_parallel_calls=AUTOTUNE)

    def decode(serialized):
        example = parse_example(serialized)
        return (preprocessing.decode(example["image/encoded"]), _boxes(example),
                example["image/class/label"])

    examples = records.map(decode, num_parallel_calls=AUTOTUNE)
    return examples.cache() if settings["cache_images"] else examples


def epoch_seed(seed, epoch):
    """The seed of epoch `epoch`'s record order in a stream seeded `seed` (int64 tensor)."""
    return tf.cast(seed, tf.int64) * EPOCHS_PER_SEED + tf.cast(epoch, tf.int64)


def example_stream(files, settings, seed, start=0, num_records=None):
    """Endless (index, (pixels, boxes, label)) from the stream's element `start` on.

    The stream is a pure function of `seed`: epoch e is every record once, in the order a
    shuffle buffer (settings["shuffle_buffer"]) seeded by (seed, e) makes of the fixed
    order of decoded_examples, and element i is element i mod n of epoch i div n (n =
    `num_records`, needed when start > 0). So a resumed run replays exactly what an
    uninterrupted one reads from `start` on, at the cost of reading the part of one epoch
    before it.
    """
    first_epoch, offset = divmod(start, num_records) if start else (0, 0)
    examples = decoded_examples(files, settings, seed)

    def epoch(number):
        return examples.shuffle(settings["shuffle_buffer"], seed=epoch_seed(seed, number),
                                reshuffle_each_iteration=False)

    stream = tf.data.Dataset.range(first_epoch, tf.int64.max).flat_map(epoch).skip(offset)
    return stream.enumerate(start=start)


def train_dataset(files, settings, seed, deterministic=False, threads=0, device=None,
                  start_step=0, num_records=None):
    """Endless, shuffled, augmented batches of (images, labels) from step `start_step` on
    (see example_stream, pipeline_options); with `device` (a GPU), the next batches wait
    in its memory, so a step never waits for a host-to-device copy.

    Each record's augmentation is seeded by (seed, its position in the stream), so a seed
    fixes the whole stream, and batch s is the same whether the run started at 0 or at s.
    Images are cropped one by one, then augmented a batch at a time
    (preprocessing.train_crop, augment_batch); settings["crop"] says whether the crop must
    cover 10% of the whole image (whole_image, the TFLM guide's) or of a person box
    (person_boxes).
    """

    crop_boxes = registry.TRAIN_CROPS[settings["crop"]]

    def crop(index, example):
        pixels, boxes, label = example
        image, draws = preprocessing.train_crop(pixels, crop_boxes(boxes),
                                                settings["image_size"], record_seed(seed, index))
        return image, draws, label

    def augment(images, draws, labels):
        return preprocessing.augment_batch(images, draws, settings["grayscale"]), labels

    start = start_step * settings["batch_size"]
    batches = (example_stream(files, settings, seed, start, num_records)
               .map(crop, num_parallel_calls=AUTOTUNE)
               .batch(settings["batch_size"], drop_remainder=True)
               .map(augment, num_parallel_calls=AUTOTUNE)
               .prefetch(AUTOTUNE)
               .with_options(pipeline_options(deterministic, threads)))
    if device:  # must be the last transformation
        batches = batches.apply(tf.data.experimental.prefetch_to_device(device, buffer_size=2))
    return batches


def largest_box_fraction(example):
    """The area fraction of the image's largest object box (0 without boxes): the size of
    the biggest person in a person image."""
    boxes = _boxes(example)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return tf.reduce_max(tf.concat([areas, [0.0]], axis=0))


def eval_dataset(files, settings, batch_size=100, kind="slim_eval"):
    """Every record exactly once, in order, preprocessed as `kind`
    (registry.EVAL_PREPROCESSINGS): batches of {"image", "label", "filename",
    "largest_box"} (see largest_box_fraction)."""
    preprocess_image = registry.EVAL_PREPROCESSINGS[kind].stored

    def preprocess(serialized):
        example = parse_example(serialized)
        return {
            "image": preprocess_image(example["image/encoded"], settings["image_size"],
                                      settings["grayscale"]),
            "label": example["image/class/label"],
            "filename": example["image/filename"],
            "largest_box": largest_box_fraction(example),
        }

    return (tf.data.TFRecordDataset(files)
            .map(preprocess, num_parallel_calls=AUTOTUNE, deterministic=True)
            .batch(batch_size)
            .prefetch(AUTOTUNE))


class EvalExample(NamedTuple):
    image: np.ndarray  # [1, H, W, C] float32, the model's input
    label: int
    name: str
    largest_box: float


def eval_examples(files, settings, limit=None, kind="slim_eval"):
    """Preprocessed EvalExamples, one at a time, eager (see eval_dataset).

    In record order: the first `limit` records (all if None) of the sorted shards. A
    damaged shard raises records.DamagedShardError naming it.
    """
    batches = eval_dataset(files, settings, batch_size=1, kind=kind)
    if limit is not None:
        batches = batches.take(limit)
    with named_damage(files):
        for batch in batches.as_numpy_iterator():
            yield EvalExample(batch["image"], int(batch["label"][0]),
                              batch["filename"][0].decode(), float(batch["largest_box"][0]))
