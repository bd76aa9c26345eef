"""TensorFlow's native start-up messages, kept out of the console and the jobs' logs.

Importing TensorFlow prints, from C++, before anything in Python can configure its log:
absl's "All log messages before absl::InitializeLog() ..." warning, the oneDNN notice
("oneDNN custom operations are on ...") and "Could not find cuda drivers", each twice;
its first op adds the CPU feature notice and, on the CPU build, "E0000 ... failed call
to cuInit". None says anything a user acts on (train.py logs the device and arithmetic
it runs with). So:
- TF_CPP_MIN_LOG_LEVEL is 3 (FATAL only) unless the user set it: TensorFlow's errors reach
  Python as exceptions, which the CLIs report.
- the first `import tensorflow` of the process runs with file descriptor 2 captured; the
  lines below that level (absl logs them before TensorFlow reads it) are dropped, the
  others written to stderr as they came. TF_CPP_MIN_LOG_LEVEL=0 shows everything.
- the notices that a tf.compat.v1 or Keras call "is deprecated and will be removed in a
  future version" are dropped (TensorFlow logged each twice in a CLI's log, to its own
  handler and to the CLI's): the workflow pins the TensorFlow they run on, so they ask
  nothing of a user. TF_CPP_MIN_LOG_LEVEL=0 shows them too.
"""

import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
import warnings

_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
_SEVERITIES = "IWEF"  # absl's line prefixes, by TF_CPP_MIN_LOG_LEVEL's numbers
_LOG_LINE = re.compile(r"([IWEF])\d{4} \d\d:\d\d:\d\d")
# Lines of no severity of their own: absl's notice, the CPU feature notice's second line.
_INFO_LINES = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\)"
                         r"|To enable the following instructions:")


def _severity(line):
    """The severity of a line TensorFlow logged (0 info to 3 fatal), None for other text."""
    logged = _LOG_LINE.match(line)
    if logged:
        return _SEVERITIES.index(logged[1])
    return 0 if _INFO_LINES.match(line) else None


def below_level(text, level):
    """`text` without the lines TensorFlow logged below `level` (TF_CPP_MIN_LOG_LEVEL)."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if (severity := _severity(line)) is None or severity >= level)


def _level():
    """TF_CPP_MIN_LOG_LEVEL as TensorFlow reads it (a non-number: 0)."""
    value = os.environ.get(_LOG_LEVEL, "0")
    return int(value) if value.isdigit() else 0


class _QuietLoader(importlib.abc.Loader):
    """Runs a module's loader with file descriptor 2 captured, then passes on what is not
    chatter."""

    def __init__(self, loader, level):
        self.loader, self.level = loader, level

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
                sys.stderr.write(below_level(captured.read().decode(errors="replace"),
                                             self.level))
                sys.stderr.flush()


class _QuietFirstImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` once, as the other finders do, with a _QuietLoader around it."""

    def __init__(self, level):
        self.level = level

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader, self.level)
        return spec


_DEPRECATED = "is deprecated and will be removed"


class _NoDeprecationNotices(logging.Filter):
    def filter(self, record):
        return _DEPRECATED not in record.getMessage()


def apply():
    """Quiet TensorFlow's start-up for this process (its first import, if still to come) and
    its deprecation notices."""
    os.environ.setdefault(_LOG_LEVEL, "3")
    level = _level()
    if level and not any(isinstance(f, _NoDeprecationNotices)
                         for f in logging.getLogger("tensorflow").filters):
        logging.getLogger("tensorflow").addFilter(_NoDeprecationNotices())
        warnings.filterwarnings("ignore", message=f".*{_DEPRECATED}")
    if level and "tensorflow" not in sys.modules and not any(
            isinstance(finder, _QuietFirstImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietFirstImport(level))
