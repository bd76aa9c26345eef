"""Another CPU, emulated: QEMU's x86-64 user mode runs this machine's Python and TensorFlow
as an AMD EPYC Rome (Zen 2: AVX2 and FMA, no AVX-512, another vendor), so every library's
run-time CPU detection (TensorFlow's choice of oneDNN, oneDNN's and XLA's instruction sets,
TFLite's kernels, libjpeg-turbo) sees that CPU. What the workflow makes there must be the
bytes it makes here. (QEMU runs the code some 500 times slower: a few steps and images.)"""

import json
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, SHORT, sha256
from test_training import checkpoint_digests
from vww.base import arithmetic
from vww.data.coco import images_dir, instances_path, load_json, vww_annotations

QEMU = shutil.which("qemu-x86_64")
CPU_MODEL = "EPYC-Rome"
pytestmark = [pytest.mark.emulated,
              pytest.mark.skipif(not QEMU, reason="needs qemu-x86_64 (Debian: qemu-user)")]


def emulated(*args, env=None):
    """Run this Python with `args` on the emulated CPU: its stdout and stderr."""
    result = subprocess.run([QEMU, "-cpu", CPU_MODEL, sys.executable, *map(str, args)],
                            capture_output=True, text=True,
                            env={**arithmetic.original_environ(), **(env or {})})
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout + result.stderr


def test_the_emulated_cpu_is_an_avx2_cpu_without_avx512():
    """What TensorFlow and oneDNN see there: AVX2 and FMA, no AVX-512 (a native run here
    has both)."""
    seen = emulated("-c", "import vww, tensorflow as tf; "
                    "tf.nn.conv2d(tf.zeros([1, 4, 4, 1]), tf.zeros([1, 1, 1, 1]), 1, \"SAME\")",
                    env={"ONEDNN_VERBOSE": "1", "PYTHONPATH": str(REPO / "scripts"),
                         "TF_CPP_MIN_LOG_LEVEL": "0"})  # TF's CPU feature notice
    offered = seen.split("To enable the following instructions:")[1].split(",")[0].split()
    assert "AVX2" in offered and "FMA" in offered and "AVX512F" not in offered
    assert "isa:Intel AVX2" in seen


# The three CLIs in one Python process (TensorFlow starts once: under QEMU that takes a
# minute), on the sample's records and the short training's frozen graph.
CHAIN = """
import sys
sys.path.insert(0, sys.argv[1])
import build_tfrecord_shard, quantize, train
build_tfrecord_shard.main(sys.argv[2].split("\\t"))
train.main(sys.argv[3].split("\\t"))
quantize.main(sys.argv[4].split("\\t"))
"""


@pytest.fixture(scope="module")
def made_here_and_emulated(sample_coco, sample_records, exported, tmp_path_factory):
    """{"here", "emulated": folder} of a val shard (shard 0 of 4, stored at 96 px), a 2-step
    training and the int8 conversion of conftest's `exported` frozen graph (50 calibration
    images), made by this CPU and by the emulated one."""
    root, _, _ = sample_coco
    records, _ = sample_records
    out, _ = exported
    base = tmp_path_factory.mktemp("cpu_models")
    annotations = base / "val.json"
    annotations.write_text(json.dumps(vww_annotations(load_json(instances_path(root, "val")),
                                                      "person", 0.005)))
    folders = {}
    for name, prefix in (("here", []), ("emulated", [QEMU, "-cpu", CPU_MODEL])):
        folder = folders[name] = base / name
        args = [
            ["--annotations", annotations, "--images", images_dir(root, "val"), "--shard", 0,
             "--num-shards", 4, "--output", folder / "val.record-00000-of-00004", "--report",
             folder / "report.json", "--max-image-side", 96],
            ["--records", *records["train"], "--num-train-records", 160, "--train-dir",
             folder / "train", "--steps", 2, *SHORT, "--batch-size", 8],
            ["--frozen-graph", out / "frozen_ema.pb", "--records", *records["val"],
             "--num-images", 50, "--output", folder / "model.tflite"],
        ]
        done = subprocess.run([*prefix, sys.executable, "-c", CHAIN, REPO / "scripts",
                               *("\t".join(map(str, cli_args)) for cli_args in args)],
                              capture_output=True, text=True,
                              env=arithmetic.original_environ())
        assert done.returncode == 0, f"{name}: {done.stderr[-4000:]}"
    return folders


def test_dataset_shards_are_the_same_bytes(made_here_and_emulated):
    here, emulated = made_here_and_emulated["here"], made_here_and_emulated["emulated"]
    assert (sha256(here / "val.record-00000-of-00004")
            == sha256(emulated / "val.record-00000-of-00004"))


def test_training_gives_the_same_checkpoint(made_here_and_emulated):
    here, emulated = made_here_and_emulated["here"], made_here_and_emulated["emulated"]
    assert checkpoint_digests(here / "train", 2) == checkpoint_digests(emulated / "train", 2)


def test_quantization_gives_the_same_tflite(made_here_and_emulated, exported):
    """The frozen graph and calibration images of conftest's `exported` .tflite."""
    out, _ = exported
    emulated = made_here_and_emulated["emulated"] / "model.tflite"
    assert sha256(emulated) == sha256(made_here_and_emulated["here"] / "model.tflite")
    assert sha256(emulated) == sha256(out / "model.tflite")
