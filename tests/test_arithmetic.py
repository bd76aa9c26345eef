"""Portable arithmetic: every CLI computes with the same TensorFlow kernels and instruction
sets on any x86-64 CPU (the byte-level proof is in test_training and test_cpu_models)."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO
from vww import arithmetic

CLIS = sorted(p.stem for p in (REPO / "scripts").glob("*.py"))
# Records the environment at the moment TensorFlow is first imported, then imports a CLI.
PROBE = """
import importlib, importlib.abc, json, os, sys
seen = {}
class Probe(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "tensorflow" and not seen:
            seen.update({k: os.environ.get(k) for k in ("TF_ENABLE_ONEDNN_OPTS",
                                                       "ONEDNN_MAX_CPU_ISA", "XLA_FLAGS")})
        return None
sys.meta_path.insert(0, Probe())
sys.path.insert(0, sys.argv[2])
importlib.import_module(sys.argv[1])
print(json.dumps(seen))
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
