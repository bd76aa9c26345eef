"""How a CLI fails: one line naming the file at fault, on stderr and in the job's log.

A CLI raises InputError for a file it cannot use and runs its main() with main_guard(),
which turns that error into `error: <file>: <what is wrong>` and exit status 1. Under
Snakemake the log file (--log) is all that is kept of a failed job, so every way out
that is not a success is written there too, with its traceback when there is one.
"""

import argparse
import errno
import json
import logging
import os
import re
import shlex
import shutil
import sys
from pathlib import Path


class InputError(Exception):
    """A file given to a CLI cannot be used: missing, unreadable, or not what it must be."""

    def __init__(self, path, problem):
        # One line whatever the cause's text (a library's message may span several).
        problem = "; ".join(line.strip() for line in str(problem).splitlines() if line.strip())
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


# How the workflow run a job belongs to was started: {"snakefile": path or None, "configfiles":
# [...], "config": {key: value}} of its command line, exported to every job (Snakefile), so
# that a remedy names the command to paste, with the run's config.
RUN_ENV = "VWW_SNAKEMAKE_RUN"


def _config_value(value):
    """A --config value as YAML reads it back: true/false, numbers and strings as they are,
    mappings and lists in flow style."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def snakemake_command(*targets, config=None, run=None):
    """The Snakemake command that runs `targets` with the config of the workflow run this
    process is a job of (RUN_ENV, or `run` in the same form), `config` ({key: value}) added
    to its --config: `snakemake TARGETS --cores all [--snakefile S] [--configfile ...]
    [--config ...]`, targets first (--configfile and --config take every word after them).
    Outside a workflow run, the command with the default config."""
    run = run or json.loads(os.environ.get(RUN_ENV, "{}"))
    words = ["snakemake", *targets, "--cores", "all"]
    if run.get("snakefile"):
        words += ["--snakefile", run["snakefile"]]
    if run.get("configfiles"):
        words += ["--configfile", *run["configfiles"]]
    values = {**run.get("config", {}), **(config or {})}
    if values:
        words += ["--config", *(f"{key}={_config_value(value)}" for key, value in values.items())]
    return shlex.join(words)


def _logs_to_file():
    """Whether logging goes to a file (parse_logged_args's --log); stderr sees the error anyway."""
    return any(isinstance(h, logging.FileHandler) for h in logging.getLogger().handlers)


# TensorFlow's and the C library's words for a full disk (ENOSPC).
_NO_SPACE = os.strerror(errno.ENOSPC)
# The flags of the CLIs that name where they write.
_OUTPUT_FLAGS = ("--output", "--train-dir", "--output-frames", "--report")


def _written_path(err):
    """Where a write that filled the disk went: the error's file, the path right before the
    words in its message (TensorFlow names the file it was writing, a temporary name beside
    it), or the CLI's output flag."""
    if getattr(err, "filename", None):
        return err.filename
    named = re.search(rf"(/[^\s;:]+)[;:]?\s+{_NO_SPACE}", str(err))
    if named:
        return re.sub(r"\.tempstate\d+$", "", named[1])
    argv = sys.argv[1:]
    return next((argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg in _OUTPUT_FLAGS), ".")


def no_space_line(err):
    """The one line for a write that found the disk full: the file, the space left where it
    is, what to do (with the command of the workflow run, vww's snakemake_command)."""
    path = Path(_written_path(err))
    folder = next((p for p in [path, *path.parents] if p.is_dir()), Path("."))
    free = shutil.disk_usage(folder).free
    return (f"error: {path}: no space left on the device ({free / 2**20:,.1f} MiB free in "
            f"{folder}): free some space there, or set results_dir to a disk with room, then "
            f"rerun (it resumes where it stopped): {snakemake_command()}")


def _error_line(err):
    """The `error: <file>: <what is wrong>` line of a known input error, else None."""
    if isinstance(err, InputError):
        return f"error: {err}"
    if ((isinstance(err, OSError) and err.errno == errno.ENOSPC)
            or _NO_SPACE in str(err)):
        return no_space_line(err)
    if isinstance(err, OSError) and err.filename is not None:
        return f"error: {err.filename}: {err.strerror or err}"
    return None


def _fail(line):
    if _logs_to_file():
        logging.error("%s", line)
    sys.exit(line)


def main_guard(main, check_inputs=True):
    """Run a CLI's main() and exit with its status; print and log its errors.

    First, unless `check_inputs` is false (a CLI that reports damage itself), every file
    the command line names is checked against the sha256 recorded when it was written
    (vww.base.integrity.check_arguments): a job stops before it reads a damaged input.
    InputError and an OSError naming a file (missing, a folder, no permission) end in one
    `error: <file>: <what is wrong>` line and status 1; so does `sys.exit("message")`.
    Anything else is a bug to fix: its traceback goes to stderr as usual and to the log.
    """
    # Imported here: vww.base.integrity imports this module.
    from vww.base.integrity import check_arguments

    try:
        if check_inputs:
            check_arguments(sys.argv[1:])
        sys.exit(main())
    except SystemExit as stop:
        if isinstance(stop.code, str):
            _fail(stop.code)
        raise
    except Exception as err:
        line = _error_line(err)
        if line:
            _fail(line)
        if _logs_to_file():
            logging.exception("unexpected error")
        raise


def cli_parser(doc, **kwargs):
    """A CLI's argument parser; `doc`, the script's docstring, is its --help text as written."""
    return argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)


def parse_logged_args(parser, argv=None):
    """parser.parse_args(argv) for a CLI that logs: adds --log FILE and sends INFO logging
    there (appended), or to stderr without it."""
    parser.add_argument("--log", metavar="FILE", help="append the log to FILE (default: stderr)")
    args = parser.parse_args(argv)
    handler = logging.FileHandler(args.log) if args.log else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    return args
