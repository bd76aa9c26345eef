"""The promise of the build: the sample's manifest on any x86-64 CPU with AVX2, at any core
count, and after a training killed and resumed, is one manifest."""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, make_workdir, snakemake, snakemake_command, write_yaml
from test_training import AVX2_CPU

pytestmark = pytest.mark.workflow

SAMPLE_CONFIG = REPO / "tests/sample_config.yaml"
MANIFEST = "results/sample/MANIFEST.sha256"
TRAIN_LOG = "results/sample/logs/person_detection/train-300.log"


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


def test_one_manifest_for_every_cpu_core_count_and_interruption(tmp_path):
    # Checkpoints every 2 s, so the kill below finds one early in training.
    often = write_yaml(tmp_path / "often.yaml",
                       "models: {person_detection: {checkpoint_interval_s: 2}}\n")
    manifests = {}

    reference = make_workdir(tmp_path / "reference")  # this CPU's best, 2 cores
    snakemake(reference, "--configfile", SAMPLE_CONFIG, often)
    manifests["this CPU, 2 cores"] = (reference / MANIFEST).read_text()

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
