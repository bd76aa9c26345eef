"""The promise of the build: the sample's manifest on any x86-64 CPU with AVX2, at any core
count, and after a training killed and resumed, is one manifest."""

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, make_workdir, snakemake, snakemake_command, write_yaml
from test_damage import flip_byte
from test_training import AVX2_CPU

pytestmark = pytest.mark.workflow

SAMPLE_CONFIG = REPO / "tests/sample_config.yaml"
MANIFEST = "results/sample/MANIFEST.sha256"
TRAIN_LOG = "results/sample/logs/person_detection/train-300.log"
MODEL = "results/sample/person_detection"
# One file of each kind, and how it is damaged: (path, how).
DAMAGE = [
    ("results/sample/datasets/results_sample_coco-person-0.005-192px/records/"
     "train.record-00001-of-00004", "flip"),
    (f"{MODEL}/train/model.ckpt-300.data-00000-of-00001", "flip"),
    (f"{MODEL}/export/frozen_graph.pb", "truncate"),
    (f"{MODEL}/person_detection.tflite", "delete"),
    (f"{MODEL}/c/person_detect_model_data.cc", "flip"),
]


def train_processes(workdir):
    """PIDs of the train.py processes running in `workdir`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
            if (any(part.endswith(b"scripts/train.py") for part in command)
                    and Path(os.readlink(proc / "cwd")) == workdir):
                found.append(int(proc.name))
        except (OSError, ValueError):
            continue  # not a process, or gone
    return found


def kill_training_at_a_checkpoint(workdir, *args):
    """Run the sample until training has saved a checkpoint, then kill -9 the training job
    (a node lost, the OOM killer); Snakemake fails the job. Returns Snakemake's output."""
    cmd, env = snakemake_command(workdir, "--configfile", *args)
    log = workdir / TRAIN_LOG
    with subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as run:
        deadline = time.monotonic() + 600
        while not (log.is_file() and "checkpoint at step" in log.read_text()):
            assert run.poll() is None and time.monotonic() < deadline, run.stdout.read()
            time.sleep(0.2)
        for pid in train_processes(workdir):
            os.kill(pid, signal.SIGKILL)
        output = run.communicate()[0]
    assert run.returncode != 0, output
    return output


def damage(path, how):
    """Delete `path`, cut it in half, or flip one byte in its middle keeping its size and
    time stamps (what Snakemake looks at)."""
    if how == "delete":
        path.unlink()
        return
    stat = path.stat()
    if how == "truncate":
        os.truncate(path, stat.st_size // 2)
    else:
        flip_byte(path, stat.st_size // 2)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def headline(summary):
    """The line `all` ends with for a model, from its summary.json."""
    point = summary["operating_point"]
    return (f"person_detection: accuracy float {summary['float_accuracy']:.4f}, int8 "
            f"{summary['int8_accuracy']:.4f}, device {summary['device_int8_accuracy']:.4f}; "
            f".tflite {summary['tflite_bytes']:,} bytes, arena {summary['arena_bytes']:,} "
            f"bytes; threshold {point['threshold']} (score {point['threshold_probability']:.3f});"
            f" C files in {MODEL}/c/ ({MODEL}/summary.json)")


def check_verify_and_repair(workdir, *args):
    """A file of each kind damaged: `snakemake verify` names each, a plain rerun sees
    nothing to do but the deleted file, and `--config repair=true` rebuilds them all."""
    for path, how in DAMAGE:
        damage(workdir / path, how)
    result = snakemake(workdir, "verify", *args, check=False)
    assert result.returncode != 0
    named = sorted(re.findall(r"^damaged: (\S+): ", result.stdout, re.MULTILINE))
    assert named == sorted(path for path, _ in DAMAGE), result.stdout
    assert ("error: 5 of 23 files missing or damaged; rebuild them (the same bytes): "
            "snakemake --cores all --config repair=true") in result.stdout
    plan = snakemake(workdir, "-n", *args).stdout
    assert "rule train:" not in plan and "rule tfrecord_shard:" not in plan
    assert "rule quantize:" in plan  # the deleted .tflite
    repaired = snakemake(workdir, "--config", "repair=true", *args).stdout
    for path, how in DAMAGE:
        ending = "missing" if how == "delete" else "deleted"
        assert re.search(f"^repair: {path}: .*{ending}, to be rebuilt$", repaired, re.MULTILINE)
    assert "resuming from step" in (workdir / TRAIN_LOG).read_text()
    assert "all 23 files intact" in snakemake(workdir, "verify", *args).stdout


def test_one_manifest_for_every_cpu_core_count_and_interruption(tmp_path):
    # Checkpoints every 2 s, so the kill below finds one early in training.
    often = write_yaml(tmp_path / "often.yaml",
                       "models: {person_detection: {checkpoint_interval_s: 2}}\n")
    manifests = {}

    reference = make_workdir(tmp_path / "reference")  # this CPU's best, 2 cores
    output = snakemake(reference, "--configfile", SAMPLE_CONFIG, often).stdout
    manifests["this CPU, 2 cores"] = (reference / MANIFEST).read_text()
    summary = json.loads((reference / MODEL / "summary.json").read_text())
    assert headline(summary) in output.splitlines(), output[-2000:]
    # Then damaged and repaired.
    check_verify_and_repair(reference, "--configfile", SAMPLE_CONFIG, often)
    manifests["damaged and repaired"] = (reference / MANIFEST).read_text()

    avx2 = make_workdir(tmp_path / "avx2")  # what a CPU without AVX-512 offers, 1 core
    snakemake(avx2, "--configfile", SAMPLE_CONFIG, often, "--cores", "1", env=AVX2_CPU)
    manifests["AVX2 CPU, 1 core"] = (avx2 / MANIFEST).read_text()

    # 16 cores (oversubscribed here): train and evaluate run 16 threads each; training is
    # killed after its first checkpoint and resumed by the rerun.
    killed = make_workdir(tmp_path / "killed")
    kill_training_at_a_checkpoint(killed, SAMPLE_CONFIG, often, "--cores", "16")
    rerun = snakemake(killed, "--configfile", SAMPLE_CONFIG, often, "--cores", "16").stdout
    train_job = rerun.split("rule train:")[1].split("rule ")[0]  # (local)rule train:
    assert "\n    threads: 16\n" in train_job, train_job
    resumed_at = int(re.search(r"resuming from step (\d+)",
                               (killed / TRAIN_LOG).read_text()).group(1))
    assert 0 < resumed_at < 300
    manifests["killed at a checkpoint and resumed, 16 threads"] = (killed / MANIFEST).read_text()

    listed = manifests["this CPU, 2 cores"]
    assert len(listed.splitlines()) == 23
    for setting, manifest in manifests.items():
        assert manifest == listed, setting
