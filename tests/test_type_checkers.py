"""mypy --strict and pyright see the public API as the docs use it, and reject its misuses.

``tests/typecheck/readme_usage.py`` uses the API the way README.md and the docs do, in both
spellings; ``tests/typecheck/mistakes.py`` misspells a name, an option and an attribute, gives
wrong types, and marks each such line ``# wrong``. Each checker runs once over both files, as
a user's project would (mypy without this project's settings or plugins, pyright in its
default mode), and must report exactly the marked lines. At run time the same misspelt
option is a ``ConfigError`` naming it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from autoresearch import ConfigError, NeuroLink, ResearchConfig
from tests.conftest import ROOT

FILES = ROOT / "tests" / "typecheck"
GOOD = FILES / "readme_usage.py"
BAD = FILES / "mistakes.py"


def marked_lines(path: Path) -> set[int]:
    lines = path.read_text().splitlines()
    return {n for n, line in enumerate(lines, 1) if line.rstrip().endswith("# wrong")}


def reported(output: str, path: Path, pattern: str) -> set[int]:
    """The line numbers of ``path`` that a checker's output reports errors on."""
    found = set()
    for match in re.finditer(pattern, output, re.MULTILINE):
        if Path(match["file"]).resolve() == path.resolve():
            found.add(int(match["line"]))
    return found


def check_both_files(module_and_options: list[str], cwd: Path, error_line: str) -> str:
    """Run a checker over both files; it must accept the good one and flag the marked lines."""
    proc = subprocess.run(
        [sys.executable, "-m", *module_and_options, str(GOOD), str(BAD)],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), "MYPYPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert reported(out, GOOD, error_line) == set(), out
    assert reported(out, BAD, error_line) == marked_lines(BAD), out
    return out


def test_mypy_strict_accepts_the_documented_use_and_rejects_each_mistake(tmp_path: Path) -> None:
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\n")  # a user's project: none of this project's settings
    options = ["--strict", "--config-file", str(config), "--cache-dir", str(tmp_path / "cache")]
    out = check_both_files(
        ["mypy", *options], tmp_path, r"^(?P<file>[^\n:]+\.py):(?P<line>\d+): error:"
    )
    assert "NeuroLnk" in out and "typoField" in out and "metricValu" in out


def test_pyright_accepts_the_documented_use_and_rejects_each_mistake(tmp_path: Path) -> None:
    project = tmp_path / "pyrightconfig.json"
    project.write_text(json.dumps({"extraPaths": [str(ROOT)], "pythonVersion": "3.11"}))
    options = ["--pythonpath", sys.executable, "--project", str(project)]
    check_both_files(
        ["pyright", *options], tmp_path, r"^\s*(?P<file>/[^\n:]+\.py):(?P<line>\d+):\d+ - error:"
    )


def test_the_same_mistakes_are_config_errors_at_run_time(tmp_path: Path) -> None:
    neurolink = NeuroLink()
    with pytest.raises(ConfigError, match=r"^typoField: is not a known setting") as caught:
        neurolink.createResearchWorker(typoField=3)  # type: ignore[call-arg]
    assert caught.value.field == "typoField"
    with pytest.raises(ConfigError, match=r"^runComand: is not a known setting"):
        neurolink.create_research_worker(
            ResearchConfig(
                repoPath=tmp_path, mutablePaths=["a.py"], runCommand="true", metric={"name": "m"}
            ),
            runComand="python3 train.py",  # type: ignore[call-arg]
        )
