#!/usr/bin/env python3
"""Train MobileNet v1 on VWW TFRecords with the TFLM guide's TF-Slim recipe (tf.compat.v1).

Checkpoints (model.ckpt-STEP) and TensorBoard summaries (loss, learning rate, batch
accuracy, input images) go to --train-dir. A rerun resumes from the newest checkpoint
there, so a killed job loses at most --checkpoint-interval-s of work; SIGTERM (a
scheduler's or Snakemake's stop) saves a checkpoint before exiting. A resume must use the
data and recipe the run started with (recorded in run.json there; only the run length,
logging and caching may change): anything else is refused, naming what changed. The run
ends with model.ckpt-<steps>, which holds both the raw weights and their moving average.

--cache-images auto keeps the decoded train images in memory when they fit --memory-mb
beside training's own memory (vww.train.image_cache); the log's first lines say what it chose.
Training runs on the first GPU TensorFlow sees, else on the CPU (logged too).

Fine-tuning: with --init-checkpoint, a run that starts from scratch first loads another
model's weights (those it ships, --init-weights) into every layer or all but the logits
(--init-scope), and starts their moving average there; steps and learning rate are this
run's own.

Example (the TFLM guide's run):
  python scripts/train.py \\
      --records results/datasets/data_coco-person-0.005-192px/records/train.record-* \\
      --dataset-summary results/datasets/data_coco-person-0.005-192px/summary.json \\
      --train-dir results/person_detection/train
Watch it with: tensorboard --logdir results/person_detection/train
"""

import logging
import signal
import time
from pathlib import Path

import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

import tensorflow as tf

from vww.base import arithmetic
from vww.base.cli import cli_parser, main_guard, parse_logged_args
from vww.base.sessions import session_config
from vww.data.coco import load_json
from vww.data.records import check_shard_digests, named_damage
from vww.model import recipe
from vww.model.dataset import (
    add_records_argument,
    count_records,
    decoded_bytes,
    record_files,
    train_dataset,
)
from vww.train import image_cache
from vww.train.checkpoints import (
    DAMAGED_DIR,
    INIT_SCOPES,
    WEIGHTS,
    check_intact,
    checkpoint_names,
    init_variables,
    misfits,
    newest_checkpoint,
    record_checkpoint,
    set_aside_damaged,
)
from vww.train.runs import check_resumable, run_record, write_run_record
from vww.train.training import build_train_graph

tf1 = tf.compat.v1


def logged_step(step, settings):
    """Whether the log (and the scalar summaries) report this step."""
    return step % settings["log_interval_steps"] == 0 or step == settings["steps"]


def _duration(seconds):
    seconds = int(seconds)
    days, hours, minutes = seconds // 86400, seconds // 3600 % 24, seconds // 60 % 60
    if days:
        return f"{days}d{hours:02d}h"
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds % 60:02d}s"


class StopRequested:
    """Turns SIGTERM/SIGINT into a flag the loop checks, so it can checkpoint first."""

    def __init__(self):
        self.signal = None
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum, _frame):
        self.signal = signal.Signals(signum).name


def initialize_from(sess, net, init):
    """Load init["checkpoint"]'s shipped weights into the layers of init["scope"]."""
    check_intact(init["checkpoint"])
    variables = init_variables(init["scope"])
    names = checkpoint_names(init["weights"], variables)
    problems = misfits(init["checkpoint"], names)
    if problems:
        raise SystemExit(
            f"error: cannot start from {init['checkpoint']} ({init['weights']} weights): it "
            f"does not fit this model (same depth_multiplier and grayscale needed; config "
            f"key: init_from): {len(problems)} variables, first {problems[0]}")
    tf1.train.Saver(names).restore(sess, init["checkpoint"])
    sess.run([net.moving_average.average(v).assign(v) for v in variables])
    fresh = sorted({v.op.name.split("/")[1] for v in tf1.model_variables()}
                   - {v.op.name.split("/")[1] for v in variables})
    logging.info("initialized %d variables from %s (%s weights); trained afresh: %s",
                 len(variables), init["checkpoint"], init["weights"], ", ".join(fresh) or "none")


def training_device():
    """The device the training step runs on: the first GPU TensorFlow sees (logged with
    its name), else None: the CPU. The input pipeline runs on the CPU either way."""
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:  # take memory as needed, not all of it at start
        tf.config.experimental.set_memory_growth(gpu, True)
    if not gpus:
        logging.info("training on the CPU: TensorFlow sees no GPU (the CPU build, or no "
                     "CUDA device on this node)")
        return None
    details = tf.config.experimental.get_device_details(gpus[0])
    logging.info("training on %s (%s, compute capability %s); %d GPU(s) visible",
                 gpus[0].name, details.get("device_name", "?"),
                 details.get("compute_capability", "?"), len(gpus))
    return "/gpu:0"


def resume_point(train_dir):
    """The newest intact checkpoint of `train_dir` (None: start afresh). Damaged newer ones
    (a crash or a disk error while they were written or since) are moved aside into
    DAMAGED_DIR, each logged: replay from an older one ends with the same bytes."""
    for prefix, path, problem in set_aside_damaged(train_dir):
        logging.warning("%s is damaged (%s): moved %s.* to %s/; resuming from the newest "
                        "intact checkpoint", path, problem, Path(prefix).name, DAMAGED_DIR)
    return newest_checkpoint(train_dir)


def train(files, num_train_records, train_dir, settings, threads=0, init=None,
          shard_digests=None):
    """Train on the train shard `files` (as record_files checked them) to settings['steps']
    (resuming from train_dir); return the final checkpoint.

    `init` ({checkpoint, weights, scope}) starts a fresh run from another model's weights.
    `shard_digests` ((source, {shard name: sha256}), the dataset summary's) are checked
    before the first step, so a damaged shard stops the run now, not hours later.
    """
    train_dir = Path(train_dir)
    train_dir.mkdir(parents=True, exist_ok=True)
    if settings["deterministic"]:
        tf.config.experimental.enable_op_determinism()
    record = run_record(files, num_train_records, settings, init)
    if shard_digests:
        source, expected = shard_digests
        check_shard_digests({f: record["train_records"][Path(f).name] for f in files},
                            expected, source)
    latest = resume_point(train_dir)
    start_step = int(latest.rsplit("-", 1)[1]) if latest else 0
    if latest:
        check_resumable(train_dir, latest, record)
    else:
        write_run_record(train_dir, record)
    if start_step > settings["steps"]:
        raise SystemExit(f"error: {latest} is beyond --steps {settings['steps']}: raise the "
                         f"steps or train in another --train-dir")

    # A resumed run reads what an uninterrupted one reads from its step on, which it finds
    # by the records' true count.
    num_records = count_records(files) if start_step else None
    device = training_device()
    logging.info("%s", arithmetic.describe())
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(settings["seed"])
        data = train_dataset(files, settings, settings["seed"], settings["deterministic"],
                             threads, device, start_step, num_records)
        images, labels = tf1.data.make_one_shot_iterator(data).get_next()
        net = build_train_graph(images, labels, settings, num_train_records)
        # Scalars at every logged step, so any run's curves have points; images (larger)
        # every summary_interval_s.
        scalars = tf1.summary.merge([
            tf1.summary.scalar("losses/total_loss", net.loss),
            tf1.summary.scalar("learning_rate", net.learning_rate),
            tf1.summary.scalar("batch_accuracy", net.accuracy)])
        pictures = tf1.summary.image("input_images", (images + 1.0) / 2.0, max_outputs=4)
        saver = tf1.train.Saver(max_to_keep=5)
        # A damaged record is named by its shard (training reads them all in the loop).
        with named_damage(files), tf1.Session(config=session_config(threads)) as sess:
            if latest:
                saver.restore(sess, latest)
                logging.info("resuming from step %d (%s)", start_step, latest)
            else:
                sess.run(tf1.global_variables_initializer())
                logging.info("starting from scratch in %s", train_dir)
                if init:
                    initialize_from(sess, net, init)
            prefix = str(train_dir / "model.ckpt")
            writer = tf1.summary.FileWriter(str(train_dir), graph)
            stop = StopRequested()
            step = start_step
            last_checkpoint = last_summary = window_start = time.monotonic()
            window_step = step
            while step < settings["steps"] and not stop.signal:
                now = time.monotonic()
                timed = now - last_summary >= settings["summary_interval_s"] or step == start_step
                fetches = [net.loss, net.step_done]
                if timed or logged_step(step + 1, settings):
                    fetches.append(scalars)
                if timed:
                    fetches.append(pictures)
                    last_summary = now
                loss, step, *summaries = sess.run(fetches)
                for summary in summaries:
                    writer.add_summary(summary, step)
                if logged_step(step, settings):
                    elapsed = time.monotonic() - window_start
                    per_step = elapsed / max(1, step - window_step)
                    logging.info(
                        "step %d/%d: loss %.4f, %.1f images/s, %.3f s/step, ETA %s",
                        step, settings["steps"], loss, settings["batch_size"] / per_step,
                        per_step, _duration(per_step * (settings["steps"] - step)))
                    window_start, window_step = time.monotonic(), step
                if time.monotonic() - last_checkpoint >= settings["checkpoint_interval_s"]:
                    record_checkpoint(saver.save(sess, prefix, global_step=step,
                                                 write_meta_graph=False))
                    logging.info("checkpoint at step %d", step)
                    last_checkpoint = time.monotonic()
            final = saver.save(sess, prefix, global_step=step, write_meta_graph=False)
            record_checkpoint(final)
            writer.close()
    if stop.signal:
        raise SystemExit(f"stopped by {stop.signal} at step {step}; saved {final}")
    logging.info("done: %s", final)
    return final


def main(argv=None):
    parser = cli_parser(__doc__)
    add_records_argument(parser, "train")
    epoch = parser.add_mutually_exclusive_group(required=True)
    epoch.add_argument("--num-train-records", type=int,
                       help="records in the train split (one epoch, for the lr decay)")
    epoch.add_argument("--dataset-summary",
                       help="summary.json of the dataset, to read the train record count from")
    parser.add_argument("--train-dir", required=True, help="checkpoints and summaries")
    parser.add_argument("--threads", type=int, default=0,
                        help="threads of TF's ops and of the input pipeline (0: one per core)")
    parser.add_argument("--memory-mb", type=int, default=image_cache.host_memory_mb(),
                        help="memory the job may use, which --cache-images auto fits the "
                             "image cache in (default: %(default)s, "
                             f"{image_cache.HOST_SHARE * 100:.0f}%% of this machine's)")
    parser.add_argument("--init-checkpoint",
                        help="fine-tune: start from this checkpoint prefix (model.ckpt-N)")
    parser.add_argument("--init-weights", choices=WEIGHTS, default="ema",
                        help="the --init-checkpoint weights to load (%(default)s)")
    parser.add_argument("--init-scope", choices=INIT_SCOPES, default="all_but_logits",
                        help="layers loaded from --init-checkpoint (%(default)s)")
    recipe.add_arguments(parser)
    args = parse_logged_args(parser, argv)
    settings = recipe.from_args(args)
    files = record_files(args.records, "train")
    shard_digests = None
    if args.dataset_summary:
        split = load_json(args.dataset_summary)["train"]
        num_train_records, image_bytes = split["records"], split["decoded_bytes"]
        if "shard_sha256" in split:
            shard_digests = args.dataset_summary, split["shard_sha256"]
        else:
            logging.warning("%s records no shard sha256 (an older version wrote it): the "
                            "shards are not checked against it", args.dataset_summary)
    else:
        num_train_records, image_bytes = args.num_train_records, decoded_bytes(files)
    settings["cache_images"], why = image_cache.decide(settings["cache_images"], image_bytes,
                                                       args.memory_mb)
    logging.info("%s", why)
    init = args.init_checkpoint and {"checkpoint": args.init_checkpoint,
                                     "weights": args.init_weights, "scope": args.init_scope}
    train(files, num_train_records, args.train_dir, settings, args.threads, init,
          shard_digests)


if __name__ == "__main__":
    main_guard(main)
