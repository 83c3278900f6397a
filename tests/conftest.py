"""Shared fixtures: the anyio backend, real git repositories in tmp_path, event recording."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

PY = sys.executable

TRAIN = textwrap.dedent(
    """\
    import os, sys, time
    X = 3.0
    SLEEP = 0.0
    EXIT = 0
    time.sleep(SLEEP)
    print("training...")
    print(f"val_bpb: {(X - 1) ** 2 + 1:.6f}")
    print("peak_vram_mb: 2048.0")
    sys.exit(EXIT)
    """
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def tool(name: str, debian_package: str, *, linux_only: bool = False) -> str:
    """The path of the program ``name`` a test needs: skipped only where it cannot exist.

    A platform that cannot have it (``linux_only`` elsewhere) skips the test. Anywhere else a
    missing tool fails the test with the package to install, because `.ci/run` installs every
    tool the tests need and every test must run.
    """
    if linux_only and not sys.platform.startswith("linux"):
        pytest.skip(f"{name} exists only on Linux")
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} is not installed; install it (Debian: apt-get install {debian_package}), "
            "as .ci/run does"
        )
    return found


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """On CI (``CI`` set, as .ci/run's runner sets it) a skipped test is a failure.

    CI must run every test: a skip there means a tool or a permission is missing that .ci/run
    should provide. The report says which test and why it would have skipped.
    """
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped on CI, where every test must run: {reason}"


@pytest.fixture(autouse=True)
def _isolated_git_config(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests never read the machine's global git config."""
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text("[user]\n\tname = Test User\n\temail = test@example.com\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


ROOT = Path(__file__).resolve().parents[1]


def run_script(source: str, where: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Write ``source`` to ``where`` and run it with Python, the project importable."""
    where.write_text(source)
    return subprocess.run(
        [sys.executable, str(where), *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def git(repo: Path, *args: str) -> str:
    """Run the git CLI in ``repo`` (tests only; the package itself uses pygit2)."""
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def make_repo(path: Path, files: dict[str, str]) -> Path:
    """A git repository at ``path`` with ``files`` committed on ``main``."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test User")
    git(path, "config", "user.email", "test@example.com")
    for rel, text in files.items():
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repo with train.py (metric (X-1)^2+1, lower is better) and program.md."""
    return make_repo(
        tmp_path / "repo",
        {"train.py": TRAIN, "program.md": "# Research program\nMake val_bpb lower.\n"},
    )


def base_config(repo: Path, **overrides: Any) -> dict[str, Any]:
    """The seed's createResearchWorker options for the ``repo`` fixture."""
    config: dict[str, Any] = {
        "repoPath": str(repo),
        "mutablePaths": ["train.py"],
        "immutablePaths": ["program.md"],
        "runCommand": f"{PY} train.py",
        "metric": {"name": "val_bpb", "pattern": r"^val_bpb:\s+([\d.]+)", "direction": "lower"},
        "timeoutMs": 20_000,
        "tag": "t1",
    }
    config.update(overrides)
    return config


def snapshot(path: Path) -> dict[str, str]:
    """Hashes of every file under ``path`` (including .git), to prove nothing changed."""
    out: dict[str, str] = {}
    for file in sorted(path.rglob("*")):
        if file.is_file():
            out[file.relative_to(path).as_posix()] = hashlib.sha256(file.read_bytes()).hexdigest()
    return out


@dataclass
class Recorder:
    """Records every event an emitter delivers."""

    events: list[Any] = field(default_factory=list)

    def __call__(self, event: Any) -> None:
        self.events.append(event)

    def types(self) -> list[str]:
        return [e.type for e in self.events]

    def of(self, name: str) -> list[Any]:
        return [e for e in self.events if e.type == f"autoresearch:{name}"]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    yield Recorder()


@contextmanager
def loopback_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free port of 127.0.0.1; yields the base URL with ``/v1``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
