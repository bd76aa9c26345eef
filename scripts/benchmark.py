#!/usr/bin/env python3
"""Measure training throughput and where it goes, in one run.

  (a)  the input pipeline alone (read, decode, crop each image, augment each batch), images/s;
  (a0) the same with the seed's design: decode the whole JPEG, convert it to float, then
       crop, resize and augment one image at a time with TF's image ops;
  (b)  the training step alone on a batch already in memory: the compute-only limit;
  (c)  full training: the pipeline feeding the training step, as train.py runs it.

Prints the figures with the ratios c/b (how close training gets to its compute limit) and
a/a0 (the pipeline against the seed's); --json prints one JSON object instead. Each
figure is timed after warm-up batches, over --batches batches of the model's batch size,
--repeats times in a fresh session; the best repeat counts, as timeit does: a slower one
measures interference from the rest of the machine, not the code.
The seed stores COCO's full-size JPEGs and decodes every image at every step: when
--records holds downscaled images (the dataset's max_image_side), give the full-size
records as --seed-records so (a0) measures the seed's design on the seed's data; (a0)
never caches decoded images. (a), (b), (c) use the model's settings in --config (its
cache_images among them).

Example:
  python scripts/benchmark.py \
      --records results/datasets/data_coco-person-0.005-192px/records/train.record-* \
      --seed-records results/datasets/data_coco-person-0.005-full/records/train.record-*
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
import yaml

from vww import image_cache, preprocessing, recipe
from vww.cli import main_guard
from vww.dataset import (AUTOTUNE, add_records_argument, decoded_bytes, decoded_examples,
                         pipeline_options, record_files, record_seed, train_dataset)
from vww.training import build_train_graph

tf1 = tf.compat.v1
REPO = Path(__file__).resolve().parent.parent


def model_settings(name, config_path):
    """A model's settings: the recipe defaults, overridden by its config.yaml entry."""
    models = yaml.safe_load(Path(config_path).read_text())["models"]
    if name not in models:
        raise SystemExit(f"error: no model {name!r} in {config_path}; there: {', '.join(models)}")
    return {**{key: default for key, (default, _) in recipe.RECIPE.items()}, **models[name]}


def seed_design_image(pixels, boxes, size, grayscale, seed):
    """The seed's design, one image at a time with TF's image ops: the whole decoded image
    to float, then crop, resize, flip, brightness, saturation, clip, grayscale, scale;
    the same random distributions as the workflow's preprocessing."""
    crop_seed, flip_seed, brightness_seed, saturation_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 4))
    image = tf.image.convert_image_dtype(pixels, tf.float32)
    begin, crop_size = preprocessing.random_crop_window(tf.shape(pixels), boxes, crop_seed)
    image = preprocessing.resize(tf.slice(image, begin, crop_size), size)
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    image = tf.image.stateless_random_brightness(image, preprocessing.BRIGHTNESS_DELTA,
                                                 brightness_seed)
    image = tf.image.stateless_random_saturation(image, *preprocessing.SATURATION_RANGE,
                                                 saturation_seed)
    return preprocessing.finish(image, grayscale)


def seed_design_dataset(files, settings, threads):
    """Batches of seed_design_image, never cached, otherwise as train_dataset runs."""

    def image(index, example):
        pixels, boxes, label = example
        return seed_design_image(pixels, boxes, settings["image_size"], settings["grayscale"],
                                 record_seed(settings["seed"], index)), label

    examples = decoded_examples(files, {**settings, "cache_images": False}, settings["seed"])
    return (examples.enumerate()
            .map(image, num_parallel_calls=AUTOTUNE)
            .batch(settings["batch_size"], drop_remainder=True)
            .prefetch(AUTOTUNE)
            .with_options(pipeline_options(settings["deterministic"], threads)))


def timed(sess, fetch, batches, warmup, batch_size):
    """Images/s of running `fetch` `batches` times, after `warmup` untimed runs."""
    for _ in range(warmup):
        sess.run(fetch)
    start = time.perf_counter()
    for _ in range(batches):
        sess.run(fetch)
    return batches * batch_size / (time.perf_counter() - start)


def measure(build, batches, warmup, batch_size, threads):
    """Build a graph with `build()` (returns the fetch) and time it in a fresh session
    configured as train.py configures its own: images/s."""
    graph = tf.Graph()
    config = tf1.ConfigProto(intra_op_parallelism_threads=threads,
                             inter_op_parallelism_threads=threads)
    with graph.as_default():
        tf1.set_random_seed(0)
        fetch = build()
        with tf1.Session(config=config) as sess:
            sess.run(tf1.global_variables_initializer())
            return timed(sess, fetch, batches, warmup, batch_size)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_records_argument(parser, "train")
    parser.add_argument("--seed-records", nargs="+", metavar="SHARD",
                        help="full-size train shards for (a0), the seed's design "
                             "(default: --records)")
    parser.add_argument("--model", default="person_detection", help="model in --config")
    parser.add_argument("--config", default=str(REPO / "config.yaml"), help="config file")
    parser.add_argument("--batches", type=int, default=30, help="timed batches per figure")
    parser.add_argument("--warmup", type=int, default=5, help="untimed batches first")
    parser.add_argument("--repeats", type=int, default=5, help="timings per figure, best kept")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="threads, as train.py --threads (default: the cores available)")
    parser.add_argument("--memory-mb", type=int, default=image_cache.host_memory_mb(),
                        help="memory cache_images auto may fill, as train.py --memory-mb "
                             "(default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    settings = model_settings(args.model, args.config)
    files = record_files(args.records, "train")
    settings["cache_images"], cache_why = image_cache.decide(
        settings["cache_images"], decoded_bytes(files), args.memory_mb)
    seed_files = record_files(args.seed_records or args.records, "train")
    size, batch = settings["image_size"], settings["batch_size"]
    channels = 1 if settings["grayscale"] else 3

    def pipeline():
        return train_dataset(files, settings, settings["seed"], settings["deterministic"],
                             args.threads)

    def next_batch(make_dataset):
        return lambda: tf1.data.make_one_shot_iterator(make_dataset()).get_next()

    def compute():
        rng = np.random.default_rng(0)
        images = tf.constant(rng.uniform(-1, 1, (batch, size, size, channels)), tf.float32)
        labels = tf.constant(rng.integers(0, 2, batch), tf.int64)
        return build_train_graph(images, labels, settings, 100_000).train_op

    def full():
        images, labels = next_batch(pipeline)()
        return build_train_graph(images, labels, settings, 100_000).train_op

    builds = {
        "pipeline_images_per_s": next_batch(pipeline),
        "seed_pipeline_images_per_s": next_batch(
            lambda: seed_design_dataset(seed_files, settings, args.threads)),
        "compute_images_per_s": compute,
        "train_images_per_s": full,
    }
    # Repeats go round all four figures, so a slow spell of the machine hits each alike.
    timings = {key: [] for key in builds}
    for _ in range(args.repeats):
        for key, build in builds.items():
            timings[key].append(measure(build, args.batches, args.warmup, batch, args.threads))
    figures = {key: max(values) for key, values in timings.items()}
    if args.json:
        print(json.dumps({**figures, "threads": args.threads}, sort_keys=True))
        return
    a, a0 = figures["pipeline_images_per_s"], figures["seed_pipeline_images_per_s"]
    b, c = figures["compute_images_per_s"], figures["train_images_per_s"]
    print(f"model {args.model}, batch {batch}, {args.threads} threads, "
          f"{len(files)} shards in {Path(files[0]).parent}")
    print(cache_why)
    if args.seed_records:
        print(f"(a0) on {len(seed_files)} shards in {Path(seed_files[0]).parent}")
    print(f"(a)  input pipeline            {a:8.1f} images/s")
    print(f"(a0) seed's pipeline design    {a0:8.1f} images/s")
    print(f"(b)  training step (in memory) {b:8.1f} images/s")
    print(f"(c)  full training             {c:8.1f} images/s")
    print(f"c/b = {c / b:.3f}   a/a0 = {a / a0:.2f}")


if __name__ == "__main__":
    main_guard(main)
