"""Every CLI explains itself: --help prints its usage and exits 0."""

import pytest

from conftest import REPO, run

SCRIPTS = sorted(p.name for p in (REPO / "scripts").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script):
    result = run(script, "--help")
    assert result.stdout.startswith("usage: " + script)
