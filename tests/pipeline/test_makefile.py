"""Install (issue 14.5): another Python is refused early with the version needed, a .venv made
by another Python is rebuilt, distclean removes .venv and data, clean keeps .venv. Runs make on
a copy of the Makefile with stand-in interpreters: nothing is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")

FAKE_PYTHON = """#!/bin/sh
if [ "$1" = "-c" ]; then echo {version}; exit 0; fi
echo "ran: python $*"
"""


@pytest.fixture
def project(tmp_path) -> Path:
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def _python(path: Path, version: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(FAKE_PYTHON.format(version=version))
    path.chmod(0o755)
    return path


def _make(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=project,
                          capture_output=True, text=True, timeout=60)


def test_another_python_is_refused_before_any_venv_is_made(project):
    fake = _python(project / "bin" / "python3.12", "3.12")
    out = _make(project, "install", f"PYTHON={fake}")
    assert out.returncode != 0
    assert "Python 3.11 is needed" in out.stderr and "3.12" in out.stderr
    assert not (project / ".venv").exists()


def test_a_venv_made_by_another_python_is_rebuilt(project):
    _python(project / ".venv" / "bin" / "python", "3.12")
    (project / ".venv" / ".installed-stamp").touch()
    good = _python(project / "bin" / "python3.11", "3.11")
    plan = _make(project, "-n", "install", f"PYTHON={good}").stdout
    assert "made by Python 3.12" in plan
    assert plan.index("rm -rf .venv") < plan.index(f"{good} -m venv .venv")


def test_an_up_to_date_venv_is_kept(project):
    _python(project / ".venv" / "bin" / "python", "3.11")
    (project / ".venv" / ".installed-stamp").touch()
    good = _python(project / "bin" / "python3.11", "3.11")
    out = _make(project, "-n", "install", f"PYTHON={good}")
    assert "Nothing to be done" in out.stdout and "rm -rf" not in out.stdout


def test_clean_keeps_venv_and_distclean_removes_it_and_data(project):
    _python(project / ".venv" / "bin" / "python", "3.11")
    (project / "data" / "reports").mkdir(parents=True)
    (project / "data" / "dagster_home").mkdir()
    assert _make(project, "clean").returncode == 0
    assert (project / ".venv").exists() and not (project / "data" / "reports").exists()
    assert (project / "data" / "dagster_home").exists()
    assert _make(project, "distclean").returncode == 0
    assert not (project / ".venv").exists() and not (project / "data").exists()
