"""How a CLI fails: one line naming the file at fault, on stderr and in the job's log.

A CLI raises InputError for a file it cannot use and runs its main() with main_guard(),
which turns that error into `error: <file>: <what is wrong>` and exit status 1. Under
Snakemake the log file (--log) is all that is kept of a failed job, so every way out
that is not a success is written there too, with its traceback when there is one.
"""

import argparse
import logging
import sys


class InputError(Exception):
    """A file given to a CLI cannot be used: missing, unreadable, or not what it must be."""

    def __init__(self, path, problem):
        # One line whatever the cause's text (a library's message may span several).
        problem = "; ".join(line.strip() for line in str(problem).splitlines() if line.strip())
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


def _logs_to_file():
    """Whether logging goes to a file (parse_logged_args's --log); stderr sees the error anyway."""
    return any(isinstance(h, logging.FileHandler) for h in logging.getLogger().handlers)


def _error_line(err):
    """The `error: <file>: <what is wrong>` line of a known input error, else None."""
    if isinstance(err, InputError):
        return f"error: {err}"
    if isinstance(err, OSError) and err.filename is not None:
        return f"error: {err.filename}: {err.strerror or err}"
    return None


def _fail(line):
    if _logs_to_file():
        logging.error("%s", line)
    sys.exit(line)


def main_guard(main):
    """Run a CLI's main() and exit with its status; print and log its errors.

    InputError and an OSError naming a file (missing, a folder, no permission) end in one
    `error: <file>: <what is wrong>` line and status 1; so does `sys.exit("message")`.
    Anything else is a bug to fix: its traceback goes to stderr as usual and to the log.
    """
    try:
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
