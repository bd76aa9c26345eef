"""The locked environments: the GPU lock is the CPU lock with TensorFlow's CUDA build."""

import re

from conftest import REPO


def pins(lock):
    """{package: version} of a pip-compile lock file."""
    text = (REPO / "envs" / lock).read_text()
    return dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+)", text, re.MULTILINE))


def test_gpu_lock_is_the_cpu_lock_with_tensorflows_cuda_build():
    cpu, gpu = pins("requirements.lock"), pins("requirements-gpu.lock")
    # tensorflow-cpu is a shim over tensorflow (both in the CPU lock); the GPU lock has
    # the one with the CUDA extra instead.
    assert cpu.pop("tensorflow-cpu") == cpu["tensorflow"] == gpu["tensorflow"] == "2.21.0"
    cuda = {name for name in gpu if name.startswith("nvidia-")}
    assert "nvidia-cudnn-cu12" in cuda
    assert {name: gpu[name] for name in gpu.keys() - cuda} == cpu
