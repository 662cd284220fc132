"""The package declaration: pyproject.toml carries the same pins as requirements.txt, and a
``magnet`` console command."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.hostile import REPO


def _requirements() -> set[str]:
    lines = (REPO / "requirements.txt").read_text().splitlines()
    return {line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()}


def test_requirements_are_the_package_dependencies_and_its_test_and_browser_extras() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    declared = set(project["dependencies"]) | set(extras["test"]) | set(extras["browser"])
    assert declared == _requirements()
    assert "torch==2.13.0" in project["dependencies"]  # an open range would pull a CUDA build


def test_console_command_is_the_cli_entry_point() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"magnet": "magnet.cli:main"}
    command = Path(sys.executable).parent / "magnet"
    if not command.is_file():
        pytest.skip("the package is not installed in this environment (make setup installs it)")
    proc = subprocess.run([str(command), "evaluate", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: magnet evaluate"), proc.stderr


def test_the_packaged_modules_are_the_library_only() -> None:
    find = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert find["include"] == ["magnet", "magnet.*"]
