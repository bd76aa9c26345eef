"""Shared fixtures: the generated sample COCO, a workflow working directory, a Snakemake run."""

import contextlib
import fcntl
import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
import tensorflow as tf

from build_tfrecord_shard import build_shard
from vww.base import arithmetic
from vww.data.coco import images_dir, instances_path, load_json, vww_annotations
from vww.data.records import parse_example, shard_images, shard_name
from vww.sample.coco import write_sample_coco, write_sample_zips

REPO = Path(__file__).resolve().parent.parent
SAMPLE_SIZE = {"train_images": 120, "val_images": 60, "seed": 7}


def pytest_collection_modifyitems(items):
    """Which tests share a pytest-xdist worker (--dist loadgroup): a module's tests do, so its
    module fixtures run once; a test marked `alone` has a worker to itself (a long run of the
    sample that runs beside the reference run)."""
    for item in items:
        alone = item.get_closest_marker("alone") is not None
        item.add_marker(pytest.mark.xdist_group(item.nodeid if alone else item.module.__name__))


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_records(paths):
    """Every record of the shard files `paths`, parsed: [{feature: numpy value}]."""
    return [
        {key: value.numpy() for key, value in parse_example(serialized).items()}
        for serialized in tf.data.TFRecordDataset([str(p) for p in paths])
    ]


@pytest.fixture(scope="session")
def sample_coco(tmp_path_factory):
    """A synthetic COCO 2014 root and its three zips: (root, zip_dir, {zip name: md5})."""
    def make(base):
        write_sample_coco(base / "coco", **SAMPLE_SIZE)
        return write_sample_zips(base / "coco", base / "zips")

    base, md5s = made_once(tmp_path_factory, "sample_coco", make)
    return base / "coco", base / "zips", md5s


@pytest.fixture(scope="session")
def sample_records(sample_coco, tmp_path_factory):
    """TFRecords of the sample (2 train shards, 1 val), stored at full size:
    ({split: shard paths}, {split: record count})."""
    root, _, _ = sample_coco
    layout = (("train", 2), ("val", 1))

    def make(folder):
        counts = {}
        for split, num_shards in layout:
            images = vww_annotations(load_json(instances_path(root, split)), "person",
                                     0.005)["images"]
            counts[split] = sum(
                build_shard(shard_images(images, shard, num_shards), images_dir(root, split),
                            folder / shard_name(split, shard, num_shards))["records"]
                for shard in range(num_shards)
            )
        return counts

    folder, counts = made_once(tmp_path_factory, "records", make)
    return {split: [folder / shard_name(split, shard, num_shards)
                    for shard in range(num_shards)] for split, num_shards in layout}, counts


@pytest.fixture(scope="session")
def coco_server(sample_coco, tmp_path_factory):
    """An HTTP server on 127.0.0.1 laid out like images.cocodataset.org."""
    _, zips, _ = sample_coco
    served = tmp_path_factory.mktemp("served")
    (served / "zips").mkdir()
    (served / "annotations").mkdir()
    for split in ("train", "val"):
        shutil.copy(zips / f"{split}2014.zip", served / "zips")
    shutil.copy(zips / "annotations_trainval2014.zip", served / "annotations")
    with serve_folder(served) as url:
        yield url


@contextlib.contextmanager
def serve_folder(folder):
    """An HTTP server on 127.0.0.1 serving `folder`, in a thread: yields its base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None  # keep pytest output clean
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def make_workdir(path):
    """An empty working directory outside the repository (snakemake() runs the repository's
    Snakefile in it: the workflow finds its own files)."""
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def workdir(tmp_path):
    return make_workdir(tmp_path / "work")


def snakemake_command(workdir, *args, snakefile=REPO / "Snakefile", env=None):
    """(command, environment) of a Snakemake run of `snakefile` (the workflow's) in
    `workdir`, 2 cores unless `args` say otherwise, `env` added to the environment."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(workdir),
           "--cores", "2", "--show-failed-logs", *args]
    # The rules call `python`: make it this interpreter, whatever PATH the tests got (or
    # `env` gives).
    path = f"{Path(sys.executable).parent}{os.pathsep}{(env or {}).get('PATH', os.environ['PATH'])}"
    return cmd, {**arithmetic.original_environ(), **(env or {}), "PATH": path}


def snakemake(workdir, *args, snakefile=REPO / "Snakefile", check=True, env=None):
    """Run `snakefile` (the workflow's) in `workdir` with 2 cores (see snakemake_command);
    its stdout holds stderr too."""
    cmd, env = snakemake_command(workdir, *args, snakefile=snakefile, env=env)
    result = subprocess.run(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} failed ({result.returncode}):\n{result.stdout}"
        )
    return result


def write_yaml(path, text):
    path.write_text(text)
    return path


def shared_temp(tmp_path_factory):
    """A temporary folder shared by every pytest-xdist worker of this session (each has its
    own basetemp, inside this one), or this session's basetemp without workers."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def exclusive(lock_path):
    """Held by one process at a time: the others wait (fcntl lock on `lock_path`)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def made_once(tmp_path_factory, name, make):
    """(folder, what make returned) of `make(folder)` run once, whatever the number of
    pytest-xdist workers: the first worker to ask makes it in a folder they share while the
    others wait. The folder is this session's, or with VWW_TEST_CACHE set, in that folder,
    where it outlives the session: CI's two pytest runs (the fast tests, then the workflow
    and emulated ones) make each once, and the SLURM and container tests compare with the
    reference run there. `make` returns JSON (or None)."""
    cache = os.environ.get("VWW_TEST_CACHE")
    root = Path(cache) if cache else shared_temp(tmp_path_factory)
    folder, made = root / name, root / f"{name}.json"
    with exclusive(root / f"{name}.lock"):
        if not made.is_file():
            shutil.rmtree(folder, ignore_errors=True)  # what an interrupted make left
            folder.mkdir(parents=True)
            made.write_text(json.dumps(make(folder)))
    return folder, json.loads(made.read_text())


# The reference run of the sample: the sample config with the folder model fine-tuned from
# the person model (README's sample), on this CPU with 2 cores, made once per test session
# and reused by every test that needs a finished sample. Every other run of the sample in
# the tests runs it another way (another CPU's instruction set as a module, killed and
# resumed at 16 threads; under SLURM in the container, one thread per job) and must give
# its manifest.
SAMPLE_RUN_CONFIGS = (REPO / "tests/sample_config.yaml", REPO / "tests/folder_config.yaml")
SAMPLE_RESULTS = "results/sample"
# The folder model's images (tests/folder_config.yaml's folder), made before the run.
SAMPLE_FACES = "results/sample_faces"


@dataclass(frozen=True)
class SampleRun:
    """A finished run of the sample: its working directory and what Snakemake printed."""
    folder: Path
    output: str

    def __truediv__(self, relative):
        return self.folder / relative

    def manifest(self):
        return (self.folder / SAMPLE_RESULTS / "MANIFEST.sha256").read_text()


def make_sample_faces(workdir):
    """The folder model's images in `workdir`, unless there already."""
    if not (workdir / SAMPLE_FACES).is_dir():
        run("make_sample_folder.py", "--output", workdir / SAMPLE_FACES)


def run_sample(workdir, *args, configs=(), snakefile=REPO / "Snakefile", env=None,
               check=True):
    """The sample (SAMPLE_RUN_CONFIGS and `configs` after them, its faces made first) in
    `workdir`, `args` added (targets first: --configfile ends the command)."""
    make_sample_faces(workdir)
    return snakemake(workdir, *args, "--configfile", *SAMPLE_RUN_CONFIGS, *configs,
                     snakefile=snakefile, env=env, check=check)


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    """The reference run (see SAMPLE_RUN_CONFIGS), made once (made_once: with CI's
    VWW_TEST_CACHE, in $VWW_TEST_CACHE/sample_run/work). Tests only read it: to change files,
    copy it (copy_sample_run)."""
    folder, output = made_once(tmp_path_factory, "sample_run",
                               lambda shared: run_sample(make_workdir(shared / "work")).stdout)
    return SampleRun(folder / "work", output)


def copy_sample_run(sample_run, destination):
    """A copy of the reference run's folder (time stamps and Snakemake's records kept, so
    Snakemake sees a finished run there too), for a test that changes its files."""
    shutil.copytree(sample_run.folder, destination, symlinks=True)
    return destination


# A short training that still learns the sample (see tests/sample_config.yaml for why the
# decays are lower than the TFLM guide's).
SHORT = ["--batch-size", "32", "--batch-norm-decay", "0.9", "--moving-average-decay", "0.99",
         "--log-interval-steps", "10"]
# What the inference CLIs need to know of that model.
SHORT_MODEL = ["--batch-norm-decay", "0.9", "--moving-average-decay", "0.99"]


def run(script, *args, check=True, cwd=None, env=None):
    """Run one of scripts/ with this interpreter in the tests' environment (not the
    arithmetic settings this process took on importing vww), `env` added; its stderr holds
    the log."""
    result = subprocess.run([sys.executable, str(REPO / "scripts" / script), *map(str, args)],
                            capture_output=True, text=True, cwd=cwd,
                            env={**arithmetic.original_environ(), **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f"{script} failed:\n{result.stderr[-4000:]}")
    return result


def train(records, train_dir, steps, *extra, check=True, env=None):
    return run("train.py", "--records", *records["train"], "--num-train-records", 160,
               "--train-dir", train_dir, "--steps", steps, *SHORT, *extra, check=check, env=env)


@pytest.fixture(scope="session")
def trained(sample_records, tmp_path_factory):
    """A 200-step training on the sample records: (train dir, its log)."""
    records, _ = sample_records
    return made_once(tmp_path_factory, "train",
                     lambda train_dir: train(records, train_dir, 200).stderr)


@pytest.fixture(scope="session")
def exported(trained, sample_records, tmp_path_factory):
    """Inference graph, frozen graphs (ema and raw) and the int8 .tflite of `trained`."""
    train_dir, _ = trained
    records, _ = sample_records
    checkpoint = train_dir / "model.ckpt-200"

    def make(out):
        run("export_inference_graph.py", "--output", out / "graph.pb", *SHORT_MODEL)
        for weights in ("ema", "raw"):
            run("freeze_graph.py", "--graph", out / "graph.pb", "--checkpoint", checkpoint,
                "--eval-weights", weights, "--output", out / f"frozen_{weights}.pb")
        run("quantize.py", "--frozen-graph", out / "frozen_ema.pb", "--records",
            *records["val"], "--num-images", 50, "--output", out / "model.tflite")

    out, _ = made_once(tmp_path_factory, "export", make)
    return out, checkpoint


@pytest.fixture(scope="session")
def evaluated(exported, sample_records, tmp_path_factory):
    """evaluate.py's and evaluate_tflite.py's reports of `exported` on the val records
    (unsure margin 0.1): (eval.json, tflite_eval.json); their per-image predictions are
    float_predictions.json and int8_predictions.json beside them."""
    out, checkpoint = exported
    records, _ = sample_records

    def make(folder):
        run("evaluate.py", "--checkpoint", checkpoint, "--records", *records["val"],
            "--output", folder / "eval.json", "--predictions", folder / "float_predictions.json",
            *SHORT_MODEL)
        run("evaluate_tflite.py", "--tflite", out / "model.tflite", "--records",
            *records["val"], "--float-eval", folder / "eval.json", "--unsure-margin", 0.1,
            "--output", folder / "tflite_eval.json",
            "--predictions", folder / "int8_predictions.json")

    folder, _ = made_once(tmp_path_factory, "evaluated", make)
    return folder / "eval.json", folder / "tflite_eval.json"
