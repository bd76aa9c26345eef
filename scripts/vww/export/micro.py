"""Running a .tflite in TensorFlow Lite Micro's interpreter (tflite-micro on PyPI).

TFLM reports its arena use and missing kernels only as text on file descriptor 2, so
that stream is captured around each call and parsed.
"""

import os
import re
import tempfile
from contextlib import contextmanager

from tflite_micro.python.tflite_micro import runtime

# Generous: the interpreter reports what it really used, which is what we publish.
ARENA_BYTES = 1 << 20


class MicroError(RuntimeError):
    """TFLM cannot run the model (an op it lacks, or too small an arena)."""


@contextmanager
def _captured_fd2(sink):
    """Collect what C++ code writes to stderr while the block runs into sink[0]."""
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            sink.append(capture.read().decode(errors="replace"))


def load(model_bytes, arena_bytes=ARENA_BYTES):
    """A TFLM interpreter for the model; MicroError names any op TFLM lacks."""
    text = []
    try:
        with _captured_fd2(text):
            return runtime.Interpreter.from_bytes(model_bytes, arena_size=arena_bytes)
    except RuntimeError as err:
        missing = sorted(set(re.findall(r"Didn't find op for builtin opcode '(\w+)'", text[0])))
        if missing:
            raise MicroError(f"TFLM has no kernel for op(s) {', '.join(missing)}: the model "
                             "cannot run on a microcontroller with TFLM") from err
        raise MicroError(f"TFLM could not prepare the model: {text[0].strip()}") from err


def run(interpreter, int8_input):
    """Int8 output of one int8 input [1, H, W, C]."""
    interpreter.set_input(int8_input, 0)
    interpreter.invoke()
    return interpreter.get_output(0)[0]


def arena_bytes_used(interpreter):
    """Bytes of tensor arena the model needs, from TFLM's allocation report."""
    text = []
    with _captured_fd2(text):
        interpreter.print_allocations()
    match = re.search(r"Arena allocation total (\d+) bytes", text[0])
    if not match:
        raise MicroError(f"no arena total in TFLM's allocation report: {text[0][:500]}")
    return int(match.group(1))
