"""Every CLI explains itself: --help prints its usage and exits 0. Run in this process
(TensorFlow loaded once): tests/test_arithmetic.py imports every CLI in a process of its
own, as `python scripts/<cli>.py` does."""

import importlib

import pytest

from conftest import REPO

SCRIPTS = sorted(p.stem for p in (REPO / "scripts").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script, capsys, monkeypatch):
    monkeypatch.setattr("sys.argv", [str(REPO / "scripts" / f"{script}.py")])
    with pytest.raises(SystemExit) as stop:
        importlib.import_module(script).main(["--help"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: {script}.py")
