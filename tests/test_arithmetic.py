"""Portable arithmetic: every CLI computes with the same TensorFlow kernels and instruction
sets on any x86-64 CPU (the byte-level proof is in test_training and test_cpu_models)."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO
from vww.base import arithmetic

CLIS = sorted(p.stem for p in (REPO / "scripts").glob("*.py"))
# Imports a CLI and prints the environment at the moment TensorFlow is first imported, then
# stops there (what TensorFlow would read is all the test needs; loading it takes seconds),
# or {} once the CLI is imported without TensorFlow.
PROBE = """
import importlib, importlib.abc, json, os, sys
seen = {}
class Probe(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "tensorflow":
            print(json.dumps({k: os.environ.get(k) for k in ("TF_ENABLE_ONEDNN_OPTS",
                                                            "ONEDNN_MAX_CPU_ISA", "XLA_FLAGS")}))
            sys.stdout.flush()
            os._exit(0)
        return None
sys.meta_path.insert(0, Probe())
sys.path.insert(0, sys.argv[2])
importlib.import_module(sys.argv[1])
print(json.dumps({}))
"""


@pytest.mark.parametrize("cli", CLIS)
def test_tensorflow_starts_with_the_portable_settings(cli):
    """TensorFlow reads TF_ENABLE_ONEDNN_OPTS at import: each CLI must set it before."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA", "XLA_FLAGS",
                        arithmetic.ENV)}
    done = subprocess.run([sys.executable, "-c", PROBE, cli, str(REPO / "scripts")],
                          capture_output=True, text=True, env=env, check=True)
    seen = json.loads(done.stdout.splitlines()[-1])
    if seen:  # the CLI imports TensorFlow
        assert seen["TF_ENABLE_ONEDNN_OPTS"] == "1" and seen["ONEDNN_MAX_CPU_ISA"] == "AVX2"
        assert seen["XLA_FLAGS"].split() == ["--xla_cpu_max_isa=AVX2"]


def test_caps_keep_other_xla_flags_and_replace_an_isa(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_max_isa=AVX512 --xla_dump_to=/tmp/x")
    assert arithmetic.caps()["XLA_FLAGS"] == "--xla_dump_to=/tmp/x --xla_cpu_max_isa=AVX2"


def test_an_unknown_mode_is_named(monkeypatch):
    monkeypatch.setenv(arithmetic.ENV, "fast")
    with pytest.raises(SystemExit, match="VWW_ARITHMETIC='fast': use one of portable, native"):
        arithmetic.mode()


def test_a_native_job_started_by_a_capped_process_runs_uncapped():
    """Snakemake imports vww, so its jobs start with the caps in their environment: a CLI
    in native arithmetic (the config's `arithmetic: native`) must undo them, and
    original_environ() give the user's own values to any process."""
    user = {k: v for k, v in arithmetic.original_environ().items()
            if k not in ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA", arithmetic.ENV)}
    user["XLA_FLAGS"] = "--xla_dump_to=/tmp/x"
    capped = {**user, **arithmetic.caps(),
              arithmetic.BEFORE_CAPS: json.dumps({"TF_ENABLE_ONEDNN_OPTS": None,
                                                  "ONEDNN_MAX_CPU_ISA": None,
                                                  "XLA_FLAGS": "--xla_dump_to=/tmp/x"})}
    done = subprocess.run([sys.executable, "-c", PROBE, "train", str(REPO / "scripts")],
                          capture_output=True, text=True, check=True,
                          env={**capped, arithmetic.ENV: "native"})
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "TF_ENABLE_ONEDNN_OPTS": None, "ONEDNN_MAX_CPU_ISA": None,
        "XLA_FLAGS": "--xla_dump_to=/tmp/x"}
    child = ("import json, os, sys; sys.path.insert(0, sys.argv[1]); from vww.base import "
             "arithmetic; print(json.dumps(arithmetic.original_environ()))")
    done = subprocess.run([sys.executable, "-c", child, str(REPO / "scripts")],
                          capture_output=True, text=True, check=True, env=capped)
    seen = json.loads(done.stdout)
    assert seen["XLA_FLAGS"] == "--xla_dump_to=/tmp/x" and "ONEDNN_MAX_CPU_ISA" not in seen
    assert arithmetic.BEFORE_CAPS not in seen
