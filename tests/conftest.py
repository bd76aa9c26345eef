"""Shared fixtures: the generated sample COCO, a workflow working directory, a Snakemake run."""

import contextlib
import functools
import hashlib
import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import tensorflow as tf

from build_tfrecord_shard import build_shard
from vww import arithmetic
from vww.coco import images_dir, instances_path, load_json, vww_annotations
from vww.records import parse_example, shard_images, shard_name
from vww.sample_coco import write_sample_coco, write_sample_zips

REPO = Path(__file__).resolve().parent.parent
SAMPLE_SIZE = {"train_images": 120, "val_images": 60, "seed": 7}


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
    base = tmp_path_factory.mktemp("sample")
    root, zips = base / "coco", base / "zips"
    write_sample_coco(root, **SAMPLE_SIZE)
    return root, zips, write_sample_zips(root, zips)


@pytest.fixture(scope="session")
def sample_records(sample_coco, tmp_path_factory):
    """TFRecords of the sample (2 train shards, 1 val), stored at full size:
    ({split: shard paths}, {split: record count})."""
    root, _, _ = sample_coco
    folder = tmp_path_factory.mktemp("records")
    shards, counts = {}, {}
    for split, num_shards in (("train", 2), ("val", 1)):
        images = vww_annotations(load_json(instances_path(root, split)), "person", 0.005)["images"]
        shards[split] = [folder / shard_name(split, shard, num_shards)
                         for shard in range(num_shards)]
        counts[split] = sum(
            build_shard(shard_images(images, shard, num_shards), images_dir(root, split),
                        path)["records"]
            for shard, path in enumerate(shards[split])
        )
    return shards, counts


@pytest.fixture(scope="session")
def coco_server(sample_coco):
    """An HTTP server on 127.0.0.1 laid out like images.cocodataset.org."""
    _, zips, _ = sample_coco
    served = zips.parent / "served"
    (served / "zips").mkdir(parents=True)
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
    # The rules call `python`: make it this interpreter, whatever PATH the tests got.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
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


# A short training that still learns the sample (see tests/sample_config.yaml for why the
# decays are lower than the seed's).
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
    train_dir = tmp_path_factory.mktemp("train")
    log = train(records, train_dir, 200).stderr
    return train_dir, log


@pytest.fixture(scope="session")
def exported(trained, sample_records, tmp_path_factory):
    """Inference graph, frozen graphs (ema and raw) and the int8 .tflite of `trained`."""
    train_dir, _ = trained
    records, _ = sample_records
    out = tmp_path_factory.mktemp("export")
    checkpoint = train_dir / "model.ckpt-200"
    run("export_inference_graph.py", "--output", out / "graph.pb", *SHORT_MODEL)
    for weights in ("ema", "raw"):
        run("freeze_graph.py", "--graph", out / "graph.pb", "--checkpoint", checkpoint,
            "--eval-weights", weights, "--output", out / f"frozen_{weights}.pb")
    run("quantize.py", "--frozen-graph", out / "frozen_ema.pb", "--records", *records["val"],
        "--num-images", 50, "--output", out / "model.tflite")
    return out, checkpoint


@pytest.fixture(scope="session")
def evaluated(exported, sample_records):
    """evaluate.py's and evaluate_tflite.py's reports of `exported` on the val records
    (unsure margin 0.1), beside its .tflite: (eval.json, tflite_eval.json); their
    per-image predictions are float_predictions.json and int8_predictions.json there."""
    out, checkpoint = exported
    records, _ = sample_records
    reports = out / "eval.json", out / "tflite_eval.json"
    run("evaluate.py", "--checkpoint", checkpoint, "--records", *records["val"],
        "--output", reports[0], "--predictions", out / "float_predictions.json", *SHORT_MODEL)
    run("evaluate_tflite.py", "--tflite", out / "model.tflite", "--records", *records["val"],
        "--float-eval", reports[0], "--unsure-margin", 0.1, "--output", reports[1],
        "--predictions", out / "int8_predictions.json")
    return reports
