"""The promise of the build: the sample's manifest on any x86-64 CPU with AVX2, at any core
count, after a training killed and resumed, and run as a module, is the reference run's;
damaged files are named until repaired back to it, and a dry run changes no file."""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import (
    REPO,
    SAMPLE_RESULTS,
    SAMPLE_RUN_CONFIGS,
    copy_sample_run,
    make_sample_faces,
    make_workdir,
    run_sample,
    sha256,
    snakemake_command,
    write_yaml,
)
from test_damage import flip_byte
from test_training import AVX2_CPU

pytestmark = pytest.mark.workflow

TRAIN_LOG = f"{SAMPLE_RESULTS}/logs/person_detection/train-300.log"
MODEL = f"{SAMPLE_RESULTS}/person_detection"
# One file of each kind, and how it is damaged: (path, how).
DAMAGE = [
    (f"{SAMPLE_RESULTS}/datasets/results_sample_coco-person-0.005-192px/records/"
     "train.record-00001-of-00004", "flip"),
    (f"{MODEL}/train/model.ckpt-300.data-00000-of-00001", "flip"),
    (f"{MODEL}/export/frozen_graph.pb", "truncate"),
    (f"{MODEL}/person_detection.tflite", "delete"),
    (f"{MODEL}/c/person_detect_model_data.cc", "flip"),
]
MODULE_SNAKEFILE = f"""\
module person_detection:
    snakefile:
        "{REPO / 'Snakefile'}"
    config:
        config


use rule * from person_detection
"""


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


def kill_training_at_a_checkpoint(workdir, *args, configs=(), snakefile=REPO / "Snakefile",
                                  env=None):
    """Run the sample (as run_sample does) until the person model's training has saved a
    checkpoint, then kill -9 it (a node lost, the OOM killer); Snakemake fails the job.
    Returns Snakemake's output."""
    make_sample_faces(workdir)
    cmd, env = snakemake_command(workdir, *args, "--configfile", *SAMPLE_RUN_CONFIGS, *configs,
                                 snakefile=snakefile, env=env)
    log = workdir / TRAIN_LOG
    with subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as running:
        deadline = time.monotonic() + 600
        while not (log.is_file() and "checkpoint at step" in log.read_text()):
            assert running.poll() is None and time.monotonic() < deadline, running.stdout.read()
            time.sleep(0.2)
        for pid in train_processes(workdir):
            os.kill(pid, signal.SIGKILL)
        output = running.communicate()[0]
    assert running.returncode != 0, output
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


def files_as_they_are(workdir):
    """{path: (sha256, size, mtime)} of every file of the run but Snakemake's own records."""
    return {str(path.relative_to(workdir)): (sha256(path), path.stat().st_size,
                                             path.stat().st_mtime_ns)
            for path in sorted(workdir.rglob("*"))
            if path.is_file() and ".snakemake" not in path.relative_to(workdir).parts}


def headline(summary, model):
    """The line `all` ends with for a model, from its summary.json."""
    point = summary["operating_point"]
    folder = f"{SAMPLE_RESULTS}/{model}"
    return (f"{model}: accuracy float {summary['float_accuracy']:.4f}, int8 "
            f"{summary['int8_accuracy']:.4f}, device {summary['device_int8_accuracy']:.4f}; "
            f".tflite {summary['tflite_bytes']:,} bytes, arena {summary['arena_bytes']:,} "
            f"bytes; threshold {point['threshold']} (score {point['threshold_probability']:.3f});"
            f" C files in {folder}/c/ ({folder}/summary.json)")


@pytest.mark.alone  # it runs while another worker makes the reference run
def test_one_manifest_for_every_cpu_core_count_and_interruption(request, tmp_path):
    """Against the reference run (this CPU's best, 2 cores, the Snakefile run directly): the
    arithmetic of an AVX2 CPU, the workflow as a module, 16 threads (on these 2 cores), and
    its training killed (kill -9) at a checkpoint and resumed, in one run. It asks for the
    reference only at the end, so that the two runs can go on side by side (pytest-xdist)."""
    workdir = make_workdir(tmp_path / "avx2")
    snakefile = write_yaml(workdir / "Snakefile", MODULE_SNAKEFILE)
    # A checkpoint every 2 s, so the kill finds one early in training.
    often = write_yaml(tmp_path / "often.yaml",
                       "models: {person_detection: {checkpoint_interval_s: 2}}\n")
    kill_training_at_a_checkpoint(workdir, "--cores", "16", configs=[often], snakefile=snakefile,
                                  env=AVX2_CPU)
    rerun = run_sample(workdir, "--cores", "16", configs=[often], snakefile=snakefile,
                       env=AVX2_CPU).stdout
    train_job = rerun.split("rule train:")[1].split("rule ")[0]  # (local)rule train:
    assert "\n    threads: 16\n" in train_job, train_job
    resumed_at = int(re.search(r"resuming from step (\d+)",
                               (workdir / TRAIN_LOG).read_text()).group(1))
    assert 0 < resumed_at < 300
    manifest = (workdir / SAMPLE_RESULTS / "MANIFEST.sha256").read_text()
    reference = request.getfixturevalue("sample_run").manifest()
    assert len(reference.splitlines()) > 23  # the person and the face model
    assert manifest == reference


def test_the_reference_run_ends_with_each_models_headline(sample_run):
    for model in ("person_detection", "face_detection"):
        summary = json.loads((sample_run / SAMPLE_RESULTS / model / "summary.json").read_text())
        assert headline(summary, model) in sample_run.output.splitlines(), \
            sample_run.output[-2000:]


def test_every_file_of_the_manifest_was_recorded_by_the_job_that_wrote_it(sample_run):
    """Each manifest line is the record its job wrote beside results_dir (.sha256/), and the
    file's sha256 (hashlib, here) still equals it."""
    results = sample_run / SAMPLE_RESULTS
    lines = (results / "MANIFEST.sha256").read_text().splitlines()
    assert len(lines) > 20
    for line in lines:
        digest, path = line.split("  ")
        relative = Path(path).relative_to(SAMPLE_RESULTS)
        record = results / ".sha256" / f"{relative}.sha256"
        assert record.read_text() == f"{digest}  {relative.name}\n", path
        assert sha256(sample_run / path) == digest, path


def test_damage_is_named_until_repaired_and_a_dry_run_changes_nothing(sample_run, tmp_path):
    """A file of each kind damaged in a copy of the reference run: `snakemake verify` names
    each and prints the command that repairs them, with the run's config files; a plain run
    records none of it as good and verify names the same files after it; a plain dry run
    plans only the deleted file, a dry run of that command names the damaged ones and
    changes no file, and the command itself, pasted, rebuilds them all: the reference's
    manifest again."""
    workdir = copy_sample_run(sample_run, tmp_path / "damaged")
    count = len(sample_run.manifest().splitlines())
    for path, how in DAMAGE:
        damage(workdir / path, how)
    result = run_sample(workdir, "verify", check=False)
    assert result.returncode != 0
    named = sorted(re.findall(r"^damaged: (\S+): ", result.stdout, re.MULTILINE))
    assert named == sorted(path for path, _ in DAMAGE), result.stdout
    remedy = (f"snakemake --cores all --snakefile {REPO / 'Snakefile'} --configfile "
              + " ".join(map(str, SAMPLE_RUN_CONFIGS)) + " --config repair=true")
    assert (f"error: {len(DAMAGE)} of {count} files missing or damaged; rebuild them (the same "
            f"bytes): {remedy}") in result.stdout.splitlines()

    # A plain run after the damage, the C source edited by hand since (a newer time stamp):
    # it rebuilds the deleted .tflite from the cut frozen graph, so its quantize job stops
    # before reading that graph, naming it; the manifest is not written again.
    manifest = (workdir / SAMPLE_RESULTS / "MANIFEST.sha256").read_bytes()
    os.utime(workdir / f"{MODEL}/c/person_detect_model_data.cc")
    plain = run_sample(workdir, check=False)
    assert plain.returncode != 0
    frozen = f"{MODEL}/export/frozen_graph.pb"
    assert (f"error: {frozen}: its bytes are not the ones the job that wrote it recorded in "
            f"{workdir / SAMPLE_RESULTS}/.sha256/person_detection/export/frozen_graph.pb.sha256 "
            f"(damaged since, or changed by hand): rebuild it (the same bytes): "
            f"{remedy}") in plain.stdout.splitlines(), plain.stdout[-3000:]
    assert (workdir / SAMPLE_RESULTS / "MANIFEST.sha256").read_bytes() == manifest
    named_again = run_sample(workdir, "verify", check=False).stdout
    assert sorted(re.findall(r"^damaged: (\S+): ", named_again, re.MULTILINE)) == named

    before = files_as_they_are(workdir)
    plan = run_sample(workdir, "-n").stdout
    assert "rule train:" not in plan and "rule tfrecord_shard:" not in plan
    assert "rule quantize:" in plan  # the deleted .tflite
    repair_plan = run_sample(workdir, "-n", "--config", "repair=true").stdout
    for path, how in DAMAGE:
        problem = "missing" if how == "delete" else "sha256 differs"
        assert re.search(f"^repair: {path}: {problem}.*, to be rebuilt$", repair_plan,
                         re.MULTILINE), path
    assert (f"repair: checked {count} files, {len(DAMAGE)} to rebuild (a dry run: none "
            "deleted; the run deletes them first)") in repair_plan
    assert files_as_they_are(workdir) == before  # the dry runs changed no file

    # The remedy, pasted in the run's folder (`snakemake` as this interpreter's module).
    repaired = subprocess.run([sys.executable, "-m", *shlex.split(remedy)], cwd=workdir,
                              env=snakemake_command(workdir)[1], capture_output=True, text=True)
    assert repaired.returncode == 0, repaired.stdout[-3000:] + repaired.stderr[-3000:]
    assert "resuming from step" in (workdir / TRAIN_LOG).read_text()
    assert f"all {count} files intact" in run_sample(workdir, "verify").stdout
    assert (workdir / SAMPLE_RESULTS / "MANIFEST.sha256").read_text() == sample_run.manifest()
