#!/usr/bin/env python3
"""Measure training throughput and where it goes, in one run.

  (a)  the input pipeline alone (read, decode, crop each image, augment each batch), images/s;
  (a0) the same with the TFLM guide's design: decode the whole JPEG, convert it to float, then
       crop, resize and augment one image at a time with TF's image ops;
  (b)  the training step alone on a batch already in memory: the compute-only limit;
  (c)  full training: the pipeline feeding the training step, as train.py runs it.

Prints the figures with the ratios c/b (how close training gets to its compute limit) and
a/a0 (the pipeline against the TFLM guide's); --json prints one JSON object instead. Each
figure is timed after warm-up batches, over --batches batches of the model's batch size,
--repeats times in a fresh session; the best repeat counts, as timeit does: a slower one
measures interference from the rest of the machine, not the code.
The TFLM guide stores COCO's full-size JPEGs and decodes every image at every step: when
--records holds downscaled images (the dataset's max_image_side), give the full-size
records as --seed-records so (a0) measures the TFLM guide's design on the TFLM guide's data; (a0)
never caches decoded images. (a), (b), (c) use the model's settings in --config (its
cache_images among them).

--levers NAME... then measures (b) and (c) again with each lever against today's code
path, each in a process of its own (some levers are environment variables TensorFlow
reads once), in rounds over all of them; the best round counts. A lever changes how the
step is computed, never the recipe; the levers are listed below.

Example:
  python scripts/benchmark.py \
      --records results/datasets/data_coco-person-0.005-192px/records/train.record-* \
      --seed-records results/datasets/data_coco-person-0.005-full/records/train.record-*
"""

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

import numpy as np
import tensorflow as tf
import yaml
from tensorflow.core.protobuf import rewriter_config_pb2

from vww.base import arithmetic
from vww.base.cli import cli_parser, main_guard
from vww.base.sessions import session_config
from vww.data.records import named_damage
from vww.model import preprocessing, recipe
from vww.model.dataset import (
    AUTOTUNE,
    add_records_argument,
    decoded_bytes,
    decoded_examples,
    pipeline_options,
    record_files,
    record_seed,
    train_dataset,
)
from vww.model.mobilenet_v1 import slim
from vww.train import image_cache
from vww.train.training import build_train_graph

tf1 = tf.compat.v1
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Lever:
    """One way to compute the same training step: environment variables for TF (read at
    import), a change to the session's ConfigProto, and a scope the step is built in."""

    what: str
    env: dict = field(default_factory=dict)
    configure: object = None  # callable(ConfigProto)
    scope: object = contextlib.nullcontext  # callable() -> context manager


def _op_threads(pool, count):
    """Configure the session's `pool` ("intra_op" or "inter_op") with `count` threads."""
    def configure(config):
        setattr(config, f"{pool}_parallelism_threads", count)
    return configure


def _onednn_bf16(config):
    config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 = (
        rewriter_config_pb2.RewriterConfig.ON)


NATIVE = {arithmetic.ENV: "native"}
LEVERS = {
    "xla": Lever("the whole step compiled by XLA (tf.xla.experimental.jit_scope)",
                 scope=tf1.xla.experimental.jit_scope),
    "xla-auto": Lever("XLA auto-clustering on the CPU (TF_XLA_FLAGS)",
                      env={"TF_XLA_FLAGS": "--tf_xla_auto_jit=2 --tf_xla_cpu_global_jit"}),
    "native": Lever("TensorFlow's own choice of kernels and instructions for this CPU "
                    "(VWW_ARITHMETIC=native), not portable arithmetic", env=NATIVE),
    # The next three need the CPU's own instructions: portable arithmetic would undo them.
    "onednn-off": Lever("TF's own (Eigen) kernels instead of oneDNN's",
                        env={**NATIVE, "TF_ENABLE_ONEDNN_OPTS": "0"}),
    "onednn-fpmath-bf16": Lever("oneDNN may compute fp32 ops in bf16 (AMX/AVX-512 BF16)",
                                env={**NATIVE, "TF_SET_ONEDNN_FPMATH_MODE": "BF16"}),
    "bf16": Lever("grappler's oneDNN bf16 mixed precision: ops in bf16, variables fp32",
                  env=NATIVE, configure=_onednn_bf16),
    "unfused-batch-norm": Lever("batch norm from separate ops instead of FusedBatchNormV3",
                                scope=lambda: slim.arg_scope([slim.batch_norm], fused=False)),
    "inter-op-1": Lever("one inter-op thread (ops one at a time, each on all threads)",
                        configure=_op_threads("inter_op", 1)),
    "intra-op-1": Lever("one intra-op thread (each op on one thread, ops side by side)",
                        configure=_op_threads("intra_op", 1)),
}
TODAY = "today"  # the code path train.py runs, as a lever that changes nothing
LEVERS_AND_TODAY = {TODAY: Lever("today's code path"), **LEVERS}


def model_settings(name, config_path):
    """A model's settings: the recipe defaults, overridden by its config.yaml entry."""
    models = yaml.safe_load(Path(config_path).read_text())["models"]
    if name not in models:
        raise SystemExit(f"error: no model {name!r} in {config_path}; there: {', '.join(models)}")
    return {**{key: default for key, (default, _) in recipe.RECIPE.items()}, **models[name]}


def seed_design_image(pixels, boxes, size, grayscale, seed):
    """The TFLM guide's design, one image at a time with TF's image ops: the whole decoded image
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
    return (examples.repeat().enumerate()
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


def lever_session_config(threads, lever):
    """The session config train.py runs with, changed by `lever`."""
    config = session_config(threads)
    if lever.configure:
        lever.configure(config)
    return config


def measure(build, batches, warmup, batch_size, threads, lever=LEVERS_AND_TODAY[TODAY]):
    """Build a graph with `build()` (returns the fetch) and time it in a fresh session
    configured as train.py configures its own, changed by `lever`: images/s."""
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(0)
        fetch = build()
        with tf1.Session(config=lever_session_config(threads, lever)) as sess:
            sess.run(tf1.global_variables_initializer())
            return timed(sess, fetch, batches, warmup, batch_size)


def lever_argv(args, lever):
    """The command line of a child process measuring (b) and (c) with one lever."""
    argv = [sys.executable, __file__, "--records", *args.records, "--model", args.model,
            "--config", args.config, "--batches", str(args.batches), "--warmup",
            str(args.warmup), "--repeats", "1", "--threads", str(args.threads),
            "--memory-mb", str(args.memory_mb), "--json"]
    return argv + ["--lever", lever]


def compare_levers(args, names):
    """(b) and (c) for today's code path and each lever, each round in fresh processes,
    the best round kept: {name: {figure: images/s}}."""
    rounds = {name: [] for name in [TODAY, *names]}
    for _ in range(args.repeats):
        for name in rounds:
            env = {**arithmetic.original_environ(), **LEVERS_AND_TODAY[name].env}
            done = subprocess.run(lever_argv(args, name), env=env, check=True,
                                  capture_output=True, text=True)
            rounds[name].append(json.loads(done.stdout.splitlines()[-1]))
    return {name: {key: max(r[key] for r in runs) for key in ("compute_images_per_s",
                                                              "train_images_per_s")}
            for name, runs in rounds.items()}


def print_levers(figures):
    today = figures[TODAY]
    print(f"{'lever':20s} {'(b)':>8s} {'(c)':>8s} {'b/today':>8s} {'c/today':>8s}")
    for name, values in figures.items():
        b, c = values["compute_images_per_s"], values["train_images_per_s"]
        print(f"{name:20s} {b:8.1f} {c:8.1f} {b / today['compute_images_per_s']:8.3f} "
              f"{c / today['train_images_per_s']:8.3f}  {LEVERS_AND_TODAY[name].what}")


def main(argv=None):
    parser = cli_parser(__doc__, epilog="levers:\n" + "\n".join(
        f"  {name:20s} {lever.what}" for name, lever in LEVERS.items()))
    add_records_argument(parser, "train")
    parser.add_argument("--seed-records", nargs="+", metavar="SHARD",
                        help="full-size train shards for (a0), the TFLM guide's design "
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
    parser.add_argument("--levers", nargs="+", choices=sorted(LEVERS), default=[],
                        metavar="LEVER", help="also compare (b) and (c) with these levers")
    parser.add_argument("--lever", choices=list(LEVERS_AND_TODAY),
                        help="measure only (b) and (c), with this lever, in this process")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    lever = LEVERS_AND_TODAY[args.lever or TODAY]
    if any(os.environ.get(key) != value for key, value in lever.env.items()):
        raise SystemExit(f"error: --lever {args.lever} needs the environment "
                         f"{' '.join(f'{k}={v!r}' for k, v in lever.env.items())} set before "
                         "TensorFlow starts (--levers sets it)")
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

    def with_lever(build):
        def build_in_scope():
            with lever.scope():
                return build()
        return build_in_scope

    builds = {
        "compute_images_per_s": with_lever(compute),
        "train_images_per_s": with_lever(full),
    }
    if not args.lever:
        builds = {
            "pipeline_images_per_s": next_batch(pipeline),
            "seed_pipeline_images_per_s": next_batch(
                lambda: seed_design_dataset(seed_files, settings, args.threads)),
            **builds,
        }
    # Repeats go round all the figures, so a slow spell of the machine hits each alike.
    timings = {key: [] for key in builds}
    with named_damage(sorted({*files, *seed_files})):
        for _ in range(args.repeats):
            for key, build in builds.items():
                timings[key].append(measure(build, args.batches, args.warmup, batch,
                                            args.threads, lever))
    figures = {key: max(values) for key, values in timings.items()}
    if args.lever:
        print(json.dumps(figures, sort_keys=True))
        return
    levers = compare_levers(args, args.levers) if args.levers else {}
    if args.json:
        print(json.dumps({**figures, "threads": args.threads, "levers": levers},
                         sort_keys=True))
        return
    a, a0 = figures["pipeline_images_per_s"], figures["seed_pipeline_images_per_s"]
    b, c = figures["compute_images_per_s"], figures["train_images_per_s"]
    print(f"model {args.model}, batch {batch}, {args.threads} threads, "
          f"{len(files)} shards in {Path(files[0]).parent}")
    print(cache_why)
    if args.seed_records:
        print(f"(a0) on {len(seed_files)} shards in {Path(seed_files[0]).parent}")
    print(f"(a)  input pipeline                {a:8.1f} images/s")
    print(f"(a0) the TFLM guide's pipeline     {a0:8.1f} images/s")
    print(f"(b)  training step (in memory)     {b:8.1f} images/s")
    print(f"(c)  full training                 {c:8.1f} images/s")
    print(f"c/b = {c / b:.3f}   a/a0 = {a / a0:.2f}")
    if levers:
        print_levers(levers)


if __name__ == "__main__":
    main_guard(main)
