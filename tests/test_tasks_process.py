"""The task worker across processes: pause/resume from elsewhere, stop --now, kill -9 and takeover.

Workers run as real subprocesses (a small SDK script); the controls come from other processes
(a second script, or this test process through the CLI). Leases are short so takeovers are quick.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
import typer
from typer.testing import CliRunner

from autoresearch import NeuroLink
from autoresearch.cli.tasks import REPO_COMMANDS
from autoresearch.tasks import TaskCycle, TaskInfo, TaskManager
from tests.conftest import PY, base_config, git, make_repo
from tests.test_cli import _processes_in

TRAIN = """\
import os, time
X = 3.0
cycle = int(os.environ.get("AUTORESEARCH_CYCLE", "1"))
if cycle >= int(os.environ.get("SLOW_FROM", "999")):
    time.sleep(120)
time.sleep(float(os.environ.get("STEP_SLEEP", "0")))
print(f"val_bpb: {(X - 1) ** 2 + 1:.6f}")
"""

WORKER = """\
import json, sys, anyio
from pathlib import Path
from autoresearch import NeuroLink
from autoresearch.tasks import TaskManager, current_task_id

store, lease, idle = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3] == "idle"
neurolink = NeuroLink()

def show(event):
    if event.type in ("autoresearch:cycle:end", "autoresearch:stopped", "autoresearch:error"):
        print(json.dumps({"task": current_task_id(), **event.to_json_dict()}), flush=True)

neurolink.get_event_emitter().on("*", show)
manager = TaskManager(store, neurolink=neurolink)
anyio.run(lambda: manager.start_worker(poll_interval=0.1, lease_seconds=lease, stop_when_idle=idle))
"""

CONTROL = """\
import sys, anyio
from autoresearch import NeuroLink
from autoresearch.tasks import TaskManager

manager = TaskManager(sys.argv[1], neurolink=NeuroLink())
print(anyio.run(getattr(manager, sys.argv[2]), sys.argv[3]).status)
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"train.py": TRAIN, "program.md": "Lower val_bpb.\n"})


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "ar-home"
    monkeypatch.setenv("AUTORESEARCH_HOME", str(home))
    return home / "tasks.db"


@pytest.fixture
def procs(repo: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """Worker processes started by a test; whatever is left is killed afterwards."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    for leftover in _processes_in(repo):
        leftover.kill()


def manager(store: Path) -> TaskManager:
    return TaskManager(store, neurolink=NeuroLink())


def sdk(store: Path, action: Callable[[TaskManager], Any]) -> Any:
    async def main() -> Any:
        return await action(manager(store))

    return anyio.run(main)


def info(store: Path, task_id: str = "repo") -> TaskInfo:
    result: TaskInfo = sdk(store, lambda m: m.get(task_id))
    return result


def history(store: Path, task_id: str = "repo") -> list[TaskCycle]:
    result: list[TaskCycle] = sdk(store, lambda m: m.cycles(task_id))
    return result


def save(store: Path, repo: Path, **options: Any) -> None:
    task = {"id": "repo", "autoresearch": base_config(repo), **options}
    sdk(store, lambda m: m.save(task))


def start_worker(
    procs: list[subprocess.Popen[str]], store: Path, lease: float, idle: bool, **env: str
) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [PY, "-c", WORKER, str(store), str(lease), "idle" if idle else "forever"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    procs.append(proc)
    return proc


def events(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def wait_for(predicate: Callable[[], object], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def in_experiment(repo: Path, cycle: int) -> Callable[[], bool]:
    """The experiment of ``cycle`` runs and its pid is recorded (so a restart can kill it)."""

    def check() -> bool:
        try:
            state = json.loads((repo / ".autoresearch" / "state.json").read_text())
        except (OSError, ValueError):
            return False
        running = state.get("phase") == "execute" and state.get("experimentPid") is not None
        return bool(running and state.get("currentCycle") == cycle)

    return check


def ledger(repo: Path) -> list[dict[str, Any]]:
    lines = (repo / ".autoresearch" / "runs.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def cli(command: str, *args: str) -> str:
    app = typer.Typer()
    for name, func in REPO_COMMANDS.items():
        app.command(name)(func)
    result = CliRunner().invoke(app, [command, *args])
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_pause_from_another_process_then_resume(
    repo: Path, store: Path, procs: list[subprocess.Popen[str]]
) -> None:
    save(store, repo, maxRuns=12)  # room for a loaded machine to pause it before the end
    worker = start_worker(procs, store, lease=2.0, idle=False, STEP_SLEEP="0.3")
    wait_for(lambda: info(store).cycles >= 2)

    control = subprocess.run(
        [PY, "-c", CONTROL, str(store), "pause", "repo"], capture_output=True, text=True
    )
    assert control.returncode == 0 and control.stdout.strip() == "paused", control.stderr
    wait_for(lambda: info(store).lease is None)  # the cycle in progress ended, then the run
    paused = info(store)
    assert paused.status == "paused" and paused.cycles < 12
    state = json.loads((repo / ".autoresearch" / "state.json").read_text())
    assert state["phase"] == "idle" and state["currentCycle"] is None
    time.sleep(1.0)  # ten polls of the worker: it must not start another cycle
    assert info(store).cycles == paused.cycles and info(store).lease is None
    assert len(ledger(repo)) == paused.cycles

    assert "is active" in cli("resume", str(repo))
    wait_for(lambda: info(store).status == "completed")
    assert worker.poll() is None  # the worker keeps serving the store
    worker.send_signal(signal.SIGINT)
    out, err = worker.communicate(timeout=30)
    done = info(store)
    assert done.cycles == 12 and [c.cycle for c in history(store)] == list(range(1, 13))
    stops = [e for e in events(out) if e["type"] == "autoresearch:stopped"]
    assert [e["reason"] for e in stops] == ["paused", "max-runs"], err
    assert all(e["task"] == "repo" for e in events(out))
    assert git(repo, "status", "--porcelain") == ""


def test_stop_now_cancels_the_running_experiment(
    repo: Path, store: Path, procs: list[subprocess.Popen[str]]
) -> None:
    save(store, repo)
    worker = start_worker(procs, store, lease=2.0, idle=True, SLOW_FROM="2")
    wait_for(in_experiment(repo, 2))
    time.sleep(0.3)
    experiment = _processes_in(repo)
    assert experiment

    assert "is stopped" in cli("stop", str(repo), "--now")
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err

    records = ledger(repo)
    assert [r["status"] for r in records] == ["keep", "crash"]
    assert "cancelled in execute" in records[1]["description"]
    assert git(repo, "rev-parse", "HEAD") == records[0]["commit"]
    assert git(repo, "status", "--porcelain") == ""
    assert (repo / "train.py").read_text() == TRAIN
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in experiment)
    stopped = info(store)
    assert stopped.status == "stopped" and not stopped.stop_now and stopped.lease is None
    assert [c.status for c in history(store)] == ["keep", "crash"]
    (stop,) = [e for e in events(out) if e["type"] == "autoresearch:stopped"]
    assert stop["reason"] == "manual" and "cancelled" in stop["message"]


def _pid(owner: str | None) -> int | None:
    return int(owner.split(":")[1]) if owner else None


def test_kill_9_then_another_worker_takes_over_and_resumes(
    repo: Path, store: Path, procs: list[subprocess.Popen[str]]
) -> None:
    save(store, repo, maxRuns=4)
    first = start_worker(procs, store, lease=1.5, idle=True, SLOW_FROM="2")
    wait_for(lambda: info(store).lease is not None)
    assert _pid(info(store).lease.owner) == first.pid  # type: ignore[union-attr]
    second = start_worker(procs, store, lease=1.5, idle=True)  # waits: the lease is taken
    wait_for(in_experiment(repo, 2))
    lease = info(store).lease
    assert lease is not None and _pid(lease.owner) == first.pid

    first.kill()
    first.wait(timeout=30)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err

    done = info(store)
    assert done.status == "completed" and done.lease is None
    cycles = history(store)
    assert [c.cycle for c in cycles] == [1, 2, 3, 4]
    assert [_pid(c.worker) for c in cycles] == [first.pid] + [second.pid] * 3
    assert cycles[1].status == "crash" and cycles[1].description == "interrupted in execute"
    records = ledger(repo)
    assert [r["cycle"] for r in records] == [1, 2, 3, 4]
    assert git(repo, "status", "--porcelain") == ""
    state = json.loads((repo / ".autoresearch" / "state.json").read_text())
    assert state["cycleCount"] == 4 and state["currentCycle"] is None
    assert git(repo, "rev-parse", "HEAD") == state["bestCommit"]
    assert not _processes_in(repo)  # the takeover killed the orphaned experiment
    stops = [e for e in events(out) if e["type"] == "autoresearch:stopped"]
    assert [e["reason"] for e in stops] == ["max-runs"]
