"""The client's README quick start (clients/python/examples/quickstart.py) runs as written
against `registrar serve` over `registrar demo` data, as `make run` sets it up."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.client import live_server

QUICKSTART = Path(__file__).parents[2] / "clients" / "python" / "examples" / "quickstart.py"


def test_the_quickstart_runs_on_demo_data(tmp_path: Path) -> None:
    with live_server(tmp_path) as server:
        out = server.cli("demo", "--enrollments", "3000")
        key = re.search(r"^KEY=(\S+)$", out, re.M)
        assert key, out
        run = subprocess.run(
            [sys.executable, str(QUICKSTART)],
            env={**os.environ, "KEY": key.group(1), "REGISTRAR_URL": server.base_url},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert re.fullmatch(r"\d+ enrollments; the first: \S+-student", lines[0])
    assert lines[2].startswith("complete http")
    assert "2020-03-05T17:53:46Z" in lines[3]
    assert any(line.startswith("created http") for line in lines)
    assert "Unknown petition_code: Q99." in lines[-1]


@pytest.mark.parametrize("name", ["README.md"])
def test_the_readme_shows_the_quickstart(name: str) -> None:
    readme = (QUICKSTART.parents[1] / name).read_text()
    code = QUICKSTART.read_text().split('"""', 2)[2].strip()
    assert code in readme, "clients/python/README.md must show examples/quickstart.py as it is"
