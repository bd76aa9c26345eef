"""Real short trainings on the sample TFRecords: learning, counting every record once,
fine-tuning, the image cache (resuming: tests/test_resume.py)."""

import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from conftest import SHORT_MODEL, read_records, run, sha256, train
from plot_report import scalar_series
from vww.train import image_cache


def content_digest(shards):
    """sha256 over the shards' own sha256s, in name order (how run.json's errors name a
    set of records)."""
    digests = "".join(sha256(p) for p in sorted(shards, key=lambda p: p.name))
    return hashlib.sha256(digests.encode()).hexdigest()


def evaluate(records, checkpoint, output, *extra):
    run("evaluate.py", "--checkpoint", checkpoint, "--records", *records["val"], "--output", output,
        *SHORT_MODEL, *extra)
    return json.loads(output.read_text())


def test_short_training_learns(trained, sample_records, tmp_path):
    records, counts = sample_records
    train_dir, log = trained
    report = evaluate(records, train_dir / "model.ckpt-200", tmp_path / "eval.json")
    assert report["step"] == 200 and report["weights"] == "ema"
    assert report["images"] == counts["val"]
    assert 0.5 <= report["majority_class_rate"] < 0.6
    assert report["accuracy"] >= report["majority_class_rate"] + 0.2, report
    assert report["by_weights"]["raw"]["accuracy"] >= report["majority_class_rate"] + 0.2
    assert "step 200/200: loss" in log and "images/s" in log and "ETA" in log


def test_curves_have_a_point_at_every_logged_step(trained):
    """The scalar summaries (the report's training curves) hold the first step and every
    step the log reports, with the loss the log prints."""
    train_dir, log = trained
    logged = {int(step): float(loss) for step, loss in
              re.findall(r"step (\d+)/200: loss (\d+\.\d+)", log)}
    assert sorted(logged) == list(range(10, 201, 10))
    series = scalar_series(train_dir)
    assert sorted(series["losses/total_loss"]) == [1, *sorted(logged)]
    for step, loss in logged.items():
        assert f"{series['losses/total_loss'][step]:.4f}" == f"{loss:.4f}"
    assert sorted(series["learning_rate"]) == sorted(series["batch_accuracy"]) == [
        1, *sorted(logged)]


def test_eval_counts_every_record_once(trained, sample_records, tmp_path):
    records, counts = sample_records
    train_dir, _ = trained
    # A batch size that does not divide the count: the last, short batch counts once.
    report = evaluate(records, train_dir / "model.ckpt-200", tmp_path / "eval.json",
                      "--batch-size", 7, "--eval-weights", "raw")
    assert counts["val"] % 7
    for result in report["by_weights"].values():
        assert result["images"] == counts["val"] == sum(map(sum, result["confusion_matrix"]))
    assert report["weights"] == "raw"
    assert report["accuracy"] == report["by_weights"]["raw"]["accuracy"]


# What oneDNN and XLA run on a CPU without AVX-512 (every AVX2 CPU: AMD Zen 1-3, Intel
# client CPUs): set in the environment, as a user or a cluster node would.
AVX2_CPU = {"ONEDNN_MAX_CPU_ISA": "AVX2", "XLA_FLAGS": "--xla_cpu_max_isa=AVX2"}
HAS_AVX512 = "avx512f" in Path("/proc/cpuinfo").read_text()


def checkpoint_digests(train_dir, step):
    return [sha256(train_dir / f"model.ckpt-{step}.{suffix}")
            for suffix in ("data-00000-of-00001", "index")]


def weights(checkpoint, suffix=""):
    """{variable: value} of the conv and logits weights (and their averages with suffix)."""
    return {name: tf.train.load_variable(str(checkpoint), name + suffix)
            for name, _ in tf.train.list_variables(str(checkpoint))
            if name.endswith("/weights")}


@pytest.mark.parametrize("scope", ["all_but_logits", "all"])
def test_fine_tuning_starts_from_the_other_models_weights(trained, sample_records, tmp_path,
                                                          scope):
    records, _ = sample_records
    train_dir, _ = trained
    base = train_dir / "model.ckpt-200"
    # One step at a vanishing learning rate: the weights stay where fine-tuning began.
    log = train(records, tmp_path, 1, "--learning-rate", "1e-12", "--init-checkpoint", base,
                "--init-scope", scope).stderr
    assert f"from {base} (ema weights)" in log
    start, tuned = weights(base, "/ExponentialMovingAverage"), weights(tmp_path / "model.ckpt-1")
    averages = weights(tmp_path / "model.ckpt-1", "/ExponentialMovingAverage")
    logits = "MobilenetV1/Logits/Conv2d_1c_1x1/weights"
    for name, value in start.items():
        assert np.allclose(averages[name], tuned[name], atol=1e-6), name  # averages start there
        if name == logits and scope == "all_but_logits":
            assert not np.allclose(tuned[name], value, atol=1e-3), "logits not fresh"
        else:
            assert np.allclose(tuned[name], value, atol=1e-6), name
    assert ("trained afresh: Logits" in log) == (scope == "all_but_logits")


def test_fine_tuning_from_an_unfit_model_names_it(trained, sample_records, tmp_path):
    records, _ = sample_records
    train_dir, _ = trained
    result = train(records, tmp_path, 1, "--depth-multiplier", "0.5", "--init-checkpoint",
                   train_dir / "model.ckpt-200", check=False)
    assert result.returncode != 0
    assert f"cannot start from {train_dir / 'model.ckpt-200'}" in result.stderr
    assert "config key: init_from" in result.stderr


def cache_line(records, memory_mb):
    """What train.py logs for cache_images auto on `records` with `memory_mb`, from the
    decoded train images' sizes (every JPEG decoded here)."""
    decoded = sum(int(np.prod(tf.io.decode_jpeg(ex["image/encoded"], channels=3).shape))
                  for ex in read_records(records["train"]))
    images_mb = math.ceil(decoded * 1.1 / 2**20)
    if images_mb + 3000 <= memory_mb:
        return (f"cache_images auto: caching the decoded train images: {images_mb} MB, with "
                f"training's 3000 MB within the job's {memory_mb} MB")
    return (f"cache_images auto: decoding at every step: caching needs {images_mb + 3000} MB "
            f"({images_mb} MB of images + 3000 MB for training), the job has {memory_mb} MB "
            "(mem_mb)")


def test_auto_caches_the_images_when_they_fit_and_says_why(trained, sample_records, tmp_path):
    _, log = trained  # cache_images auto, --memory-mb: 80% of this machine's
    records, _ = sample_records
    assert cache_line(records, image_cache.host_memory_mb()) in log
    short = train(records, tmp_path, 1, "--memory-mb", 3001).stderr
    assert cache_line(records, 3001) in short
    assert "decoding at every step" in short
