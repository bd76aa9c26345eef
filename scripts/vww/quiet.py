"""TensorFlow's native start-up messages, kept out of the console and the jobs' logs.

Importing TensorFlow prints, from C++, before anything in Python can configure its log:
absl's "All log messages before absl::InitializeLog() ..." warning, the oneDNN notice
("oneDNN custom operations are on ...") and "Could not find cuda drivers", each twice;
its first op adds the CPU feature notice and, on the CPU build, "E0000 ... failed call
to cuInit". None says anything a user acts on (train.py logs the device and arithmetic
it runs with). So:
- TF_CPP_MIN_LOG_LEVEL is 3 (FATAL only) unless the user set it: TensorFlow's errors reach
  Python as exceptions, which the CLIs report. TF_CPP_MIN_LOG_LEVEL=0 shows everything.
- the first `import tensorflow` of the process runs with file descriptor 2 captured; its
  info and warning lines are dropped and anything else is written to stderr as it came.
"""

import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
_CHATTER = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\)"
                      r"|[IW]\d{4} \d\d:\d\d:\d\d"
                      r"|To enable the following instructions:")


def without_chatter(text):
    """`text` without TensorFlow's start-up info and warning lines."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not _CHATTER.match(line))


class _QuietLoader(importlib.abc.Loader):
    """Runs a module's loader with file descriptor 2 captured, then passes on what is not
    chatter."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile(mode="w+b") as captured:
            os.dup2(captured.fileno(), 2)
            try:
                self.loader.exec_module(module)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                captured.seek(0)
                sys.stderr.write(without_chatter(captured.read().decode(errors="replace")))
                sys.stderr.flush()


class _QuietFirstImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` once, as the other finders do, with a _QuietLoader around it."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def apply():
    """Quiet TensorFlow's start-up for this process (its first import, if still to come)."""
    os.environ.setdefault(_LOG_LEVEL, "3")
    if "tensorflow" not in sys.modules and not any(
            isinstance(finder, _QuietFirstImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietFirstImport())
