"""slim's labels.txt: one `<label>:<class name>` line per class."""

from pathlib import Path

from vww.base.cli import InputError


def class_names(labels_path):
    """[name of label 0, name of label 1] from a labels.txt of 2 classes."""
    lines = [line for line in Path(labels_path).read_text().splitlines() if line.strip()]
    names = dict(line.split(":", 1) for line in lines if ":" in line)
    if len(lines) != 2 or set(names) != {"0", "1"}:
        raise InputError(labels_path, "not the labels of 2 classes (a `0:<name>` and a "
                                      "`1:<name>` line)")
    return [names["0"], names["1"]]
