"""3. Timeout kill: a process tree that outlives its time limit, through ``run_experiment``.

The command (``python tree.py``, started by ``/bin/sh -c``) builds this tree and then sleeps:

    sh -c  ->  parent  ->  child A
                       ->  child B  ->  grandchild (ignores SIGTERM)

Every process appends its pid to a file when it is up. A watcher thread polls every member's
/proc entry each millisecond and notes when it is gone (no entry, or a zombie: it has exited and
only waits to be reaped). The deadline is the moment ``run_experiment`` started the command
(its ``on_start`` callback) plus the time limit. Reported per run: deadline -> last process
gone, deadline -> ``run_experiment`` returned, and survivors (members still running after it
returned; any are killed by the benchmark afterwards).

Two scenarios: the grandchild stays in the run's process group, and (harder) the grandchild
also calls ``setsid()`` to leave the group, so only the engine's process-tree tracking finds it.

Target: deadline -> last process gone <= grace + 100 ms, zero survivors.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import anyio
from _common import parser, percentile, summary, table, temp_dir, verdict, write_results

from autoresearch.runner import run_experiment

TIMEOUT_S = 0.5
GRACE_S = 0.5
MARGIN_MS = 100.0
EXPECTED = 5  # sh, parent, child A, child B, grandchild (sh may exec python: then 4)

TREE = textwrap.dedent(
    """\
    import os, signal, subprocess, sys, time

    role = sys.argv[1] if len(sys.argv) > 1 else "parent"
    pids = os.environ["TREE_PIDS"]
    escape = os.environ.get("TREE_SETSID") == "1"

    def note():
        fd = os.open(pids, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, f"{role} {os.getpid()}\\n".encode())
        os.close(fd)

    def spawn(name):
        return subprocess.Popen([sys.executable, __file__, name])

    if role == "grandchild":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if escape:
            os.setsid()
    elif role == "child-b":
        spawn("grandchild")
    elif role == "parent":
        spawn("child-a")
        spawn("child-b")
    note()
    while True:
        time.sleep(1)
    """
)


def _gone(pid: int, start_ticks: str | None) -> bool:
    """Whether ``pid`` has exited: no /proc entry, a zombie, or a different process now."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return True
    if fields[0] in (b"Z", b"X"):
        return True
    return start_ticks is not None and fields[19].decode() != start_ticks


def _start_ticks(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[19].decode()
    except OSError:
        return None


class Watcher(threading.Thread):
    """Polls the tree's pids every millisecond and records when each one is gone."""

    def __init__(self, pid_file: Path, shell_pid: int) -> None:
        super().__init__(daemon=True)
        self.pid_file = pid_file
        self.known: dict[int, str | None] = {shell_pid: _start_ticks(shell_pid)}
        self.gone_at: dict[int, float] = {}
        self.stop = threading.Event()

    def _read_pids(self) -> None:
        try:
            text = self.pid_file.read_text()
        except FileNotFoundError:
            return
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and int(parts[1]) not in self.known:
                pid = int(parts[1])
                self.known[pid] = _start_ticks(pid)

    def run(self) -> None:
        while not self.stop.is_set():
            self._read_pids()
            now = time.monotonic()
            for pid, ticks in self.known.items():
                if pid not in self.gone_at and _gone(pid, ticks):
                    self.gone_at[pid] = now
            time.sleep(0.001)


async def one_run(root: Path, index: int, setsid: bool) -> dict[str, Any]:
    pid_file = root / f"pids-{index}.txt"
    watcher: Watcher | None = None
    started_at = 0.0

    async def on_start(pid: int) -> None:
        nonlocal watcher, started_at
        started_at = time.monotonic()
        watcher = Watcher(pid_file, pid)
        watcher.start()

    env = {"TREE_PIDS": str(pid_file), "TREE_SETSID": "1" if setsid else "0"}
    outcome = await run_experiment(
        f"{sys.executable} tree.py",
        cwd=root,
        log_path=root / f"run-{index}.log",
        timeout_s=TIMEOUT_S,
        kill_grace_s=GRACE_S,
        env=env,
        on_start=on_start,
    )
    returned = time.monotonic()
    assert watcher is not None
    watcher._read_pids()
    # Give the watcher a moment to see the last exits, then stop it.
    await anyio.sleep(0.01)
    watcher.stop.set()
    watcher.join()
    deadline = started_at + TIMEOUT_S
    survivors = [pid for pid, ticks in watcher.known.items() if not _gone(pid, ticks)]
    for pid in survivors:  # never leave anything behind, even if the engine did
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    missing = [pid for pid in watcher.known if pid not in watcher.gone_at and pid not in survivors]
    last_gone = max(watcher.gone_at.values(), default=returned)
    roles = len(pid_file.read_text().splitlines()) if pid_file.exists() else 0
    return {
        "timed_out": outcome.timed_out,
        "processes_seen": len(watcher.known),
        "tree_members_up": roles,
        "survivors": len(survivors),
        "unaccounted": len(missing),
        "last_gone_after_deadline_ms": (last_gone - deadline) * 1000,
        "returned_after_deadline_ms": (returned - deadline) * 1000,
    }


async def scenario(root: Path, runs: int, setsid: bool) -> dict[str, Any]:
    (root / "tree.py").write_text(TREE)
    results = [await one_run(root, i, setsid) for i in range(runs)]
    gone = [r["last_gone_after_deadline_ms"] for r in results]
    back = [r["returned_after_deadline_ms"] for r in results]
    survivors = sum(r["survivors"] for r in results)
    incomplete = sum(r["tree_members_up"] < 4 for r in results)
    passed = (
        max(gone) <= GRACE_S * 1000 + MARGIN_MS
        and survivors == 0
        and incomplete == 0
        and all(r["timed_out"] for r in results)
    )
    return {
        "runs": runs,
        "setsid_grandchild": setsid,
        "last_gone_after_deadline_ms": summary(gone),
        "returned_after_deadline_ms": summary(back),
        "survivors": survivors,
        "runs_with_incomplete_tree": incomplete,
        "all_timed_out": all(r["timed_out"] for r in results),
        "passed": passed,
        "per_run": results,
    }


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    runs = 5 if args.quick else 50
    out: dict[str, Any] = {
        "timeout_s": TIMEOUT_S,
        "grace_s": GRACE_S,
        "limit_ms": GRACE_S * 1000 + MARGIN_MS,
    }
    rows = []
    for key, setsid in (("in_group", False), ("setsid_grandchild", True)):
        with temp_dir("kill") as root:
            res = anyio.run(scenario, root, runs, setsid)
        out[key] = res
        g = res["last_gone_after_deadline_ms"]
        rows.append(
            [
                "grandchild left the group (setsid)" if setsid else "grandchild in the group",
                runs,
                g["median"],
                percentile([r["last_gone_after_deadline_ms"] for r in res["per_run"]], 90),
                g["max"],
                res["returned_after_deadline_ms"]["median"],
                res["survivors"],
                verdict(res["passed"]),
            ]
        )
    print(
        table(
            f"Timeout kill: time limit {TIMEOUT_S} s, grace {GRACE_S} s (ms after the deadline)",
            [
                "tree",
                "runs",
                "last gone median",
                "p90",
                "max",
                "call returned median",
                "survivors",
                f"<= grace+{MARGIN_MS:.0f} ms",
            ],
            rows,
        )
    )
    out["passed"] = out["in_group"]["passed"] and out["setsid_grandchild"]["passed"]
    out["target"] = "deadline -> last process gone <= grace + 100 ms (every run), zero survivors"
    write_results("timeout_kill", out, args)


if __name__ == "__main__":
    main()
