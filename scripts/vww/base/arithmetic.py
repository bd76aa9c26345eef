"""Arithmetic that does not depend on the CPU: the settings of TensorFlow every CLI runs with.

TensorFlow chooses its kernels by CPU at run time, and each choice rounds differently:
- whether it runs oneDNN's kernels at all: only on CPUs with AVX512_VNNI, AVX512_BF16 or
  AMX by default; on others (AMD EPYC before Zen 4, Intel client CPUs) its own Eigen
  kernels, whose convolutions, batch norm and softmax give other bits;
- which instructions oneDNN's JIT kernels use (AVX2, AVX-512, AMX): training diverges
  within steps from one to the other;
- which instructions XLA compiles the training augmentation for.
Portable arithmetic (the default) turns oneDNN's kernels on and caps oneDNN and XLA at
AVX2: every x86-64 CPU with AVX2 (Intel since 2013, AMD since 2015) then runs the same
kernels with the same instructions. Measured: the same checkpoints and .tflite on this
AVX-512/AMX Xeon and on an emulated AMD EPYC (Zen 2: AVX2, no AVX-512), at 1 to 16 threads.
Native arithmetic trains 1.27x faster on this Xeon, so the workflow's config key
`arithmetic` chooses (docs/reproducibility.md).

TensorFlow reads TF_ENABLE_ONEDNN_OPTS when it is imported, so every CLI imports this
module before any third-party package (importing the vww package applies it).
VWW_ARITHMETIC=native leaves TensorFlow's own choices (and any of these variables a user
set), for measuring: bytes then hold per CPU model only.

A process that applies the caps records the variables as they were (VWW_ENVIRON_BEFORE_CAPS),
and its children inherit both: Snakemake, which imports vww, starts every job capped, and a
job in native arithmetic must undo that; a test runner's workers, started capped, must know
what the user's environment was.
"""

import json
import os
import re

ENV = "VWW_ARITHMETIC"
MODES = ("portable", "native")
# Every x86-64 CPU since 2013-2015 (Intel Haswell, AMD Excavator/Zen) has AVX2 and FMA.
PORTABLE_ISA = "AVX2"
_XLA_ISA_FLAG = re.compile(r"--xla_cpu_max_isa=\S*")


def mode():
    """portable (the default) or native, from the environment."""
    value = os.environ.get(ENV, "portable")
    if value not in MODES:
        raise SystemExit(f"error: {ENV}={value!r}: use one of {', '.join(MODES)}")
    return value


# Would let oneDNN compute fp32 ops in bf16 or tf32, CPU by CPU.
_FPMATH_MODES = ("TF_SET_ONEDNN_FPMATH_MODE", "ONEDNN_DEFAULT_FPMATH_MODE")


def caps():
    """The environment of portable arithmetic: oneDNN's kernels on, oneDNN's and XLA's
    instruction sets capped at PORTABLE_ISA (other XLA_FLAGS kept)."""
    xla_flags = _XLA_ISA_FLAG.sub("", os.environ.get("XLA_FLAGS", "")).split()
    return {"TF_ENABLE_ONEDNN_OPTS": "1", "ONEDNN_MAX_CPU_ISA": PORTABLE_ISA,
            "XLA_FLAGS": " ".join([*xla_flags, f"--xla_cpu_max_isa={PORTABLE_ISA}"])}


# The variables apply() changes, as they were before any process applied the caps (None:
# unset), as JSON: set by the first apply() and inherited by child processes.
BEFORE_CAPS = "VWW_ENVIRON_BEFORE_CAPS"


def _set(environ, values):
    """Set each of `values` ({name: value}) in `environ`; a value None unsets it."""
    for name, value in values.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value


def _before_caps(environ):
    """The variables the caps change, as they were before: {} if no caps were applied."""
    return json.loads(environ.get(BEFORE_CAPS, "{}"))


def apply():
    """Set the caps in this process's environment unless the mode is native; in native
    mode, undo the caps a parent process applied."""
    before = _before_caps(os.environ)
    if mode() == "portable":
        changed = {**caps(), **dict.fromkeys(_FPMATH_MODES)}
        if not before:
            os.environ[BEFORE_CAPS] = json.dumps({name: os.environ.get(name)
                                                  for name in changed})
        _set(os.environ, changed)
    elif before:
        _set(os.environ, {**before, BEFORE_CAPS: None})


def original_environ():
    """The environment as it was before any process applied the caps: what a child process
    that chooses its own arithmetic (VWW_ARITHMETIC) starts from."""
    environ = dict(os.environ)
    _set(environ, {**_before_caps(environ), BEFORE_CAPS: None})
    return environ


def describe():
    """One line for logs and reports: what this process computes with."""
    if mode() == "native":
        return "native arithmetic: the CPU's best instructions (bytes hold per CPU model)"
    return (f"portable arithmetic: oneDNN's kernels, oneDNN and XLA capped at {PORTABLE_ISA} "
            "(the same bytes on any x86-64 CPU with AVX2)")
