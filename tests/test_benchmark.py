"""benchmark.py's levers change how the training step is computed, as they say."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from benchmark import LEVERS, LEVERS_AND_TODAY, TODAY, lever_session_config, model_settings
from conftest import REPO
from vww.base import arithmetic
from vww.train.training import build_train_graph

tf1 = tf.compat.v1


def executed_ops(lever):
    """The op types one training step runs with `lever` (benchmark's (b) graph, traced),
    and the dtypes of their outputs."""
    settings = model_settings("person_detection", REPO / "config.yaml")
    with tf.Graph().as_default():
        images = tf.constant(np.zeros((8, 96, 96, 1)), tf.float32)
        with lever.scope():
            step = build_train_graph(images, tf.constant([0, 1] * 4, tf.int64), settings,
                                     100).train_op
        with tf1.Session(config=lever_session_config(1, lever)) as sess:
            sess.run(tf1.global_variables_initializer())
            metadata = tf1.RunMetadata()
            sess.run(step, options=tf1.RunOptions(trace_level=tf1.RunOptions.FULL_TRACE),
                     run_metadata=metadata)
    nodes = [node for device in metadata.step_stats.dev_stats for node in device.node_stats
             if " = " in node.timeline_label]
    return ({node.timeline_label.split(" = ")[1].split("(")[0] for node in nodes},
            {tf.dtypes.as_dtype(output.tensor_description.dtype).name
             for node in nodes for output in node.output})


@pytest.mark.parametrize("name, present, absent, bfloat16", [
    (TODAY, "FusedBatchNormV3", "Xla", False),
    ("xla", "Xla", "FusedBatchNormV3", False),
    ("unfused-batch-norm", "Rsqrt", "FusedBatchNorm", False),
    ("bf16", "FusedBatchNormV3", "Xla", True),
])
def test_a_lever_runs_the_step_it_names(name, present, absent, bfloat16):
    """In a process of its own with the lever's environment, as --levers runs it
    (TensorFlow reads it at start; bf16 needs the CPU's own instructions)."""
    code = ("import json; from benchmark import LEVERS_AND_TODAY; from test_benchmark import "
            f"executed_ops; print(json.dumps([sorted(s) for s in executed_ops("
            f"LEVERS_AND_TODAY[{name!r}])]))")
    env = {**arithmetic.original_environ(), **LEVERS_AND_TODAY[name].env,
           "PYTHONPATH": os.pathsep.join(str(REPO / folder) for folder in ("scripts", "tests"))}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    op_types, dtypes = json.loads(done.stdout.splitlines()[-1])
    assert any(present in op for op in op_types), sorted(op_types)
    assert not any(absent in op for op in op_types), sorted(op_types)
    assert ("bfloat16" in dtypes) == bfloat16, sorted(dtypes)


def test_an_environment_lever_is_refused_without_its_environment(tmp_path):
    done = subprocess.run([sys.executable, REPO / "scripts/benchmark.py", "--records",
                           tmp_path / "train.record-00000-of-00001", "--lever", "onednn-off"],
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "error: --lever onednn-off needs the environment VWW_ARITHMETIC='native' "
        "TF_ENABLE_ONEDNN_OPTS='0' set before TensorFlow starts (--levers sets it)")
    assert LEVERS["onednn-off"].env == {"VWW_ARITHMETIC": "native", "TF_ENABLE_ONEDNN_OPTS": "0"}
