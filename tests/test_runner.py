"""The experiment runner: exit codes, the log, timeouts, cleanup of process trees, memory."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import psutil
import pytest

from autoresearch import Edit, NeuroLink, ScriptedProposer, ScriptedStep
from autoresearch.runner import RunOutcome, run_experiment
from tests.conftest import base_config

PY = shlex.quote(sys.executable)

# One script, several roles, so that a test can build a process tree of real Python processes.
# Every process appends its pid to the pid file as soon as it starts.
TREE_SCRIPT = """
import os, signal, subprocess, sys, time

role, pidfile = sys.argv[1], sys.argv[2]

def record():
    with open(pidfile, "a") as f:
        f.write(f"{os.getpid()}\\n")

def spawn(next_role):
    return subprocess.Popen([sys.executable, __file__, next_role, pidfile])

def wait_for_pids(count):
    while len(open(pidfile).read().split()) < count:
        time.sleep(0.01)

if role == "parent":
    record()
    spawn("child")
    time.sleep(300)
elif role == "child":
    record()
    spawn("stubborn")
    time.sleep(300)
elif role == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    record()
    time.sleep(300)
elif role == "setsid-parent":
    record()
    spawn("leaving-child")
    time.sleep(300)
elif role == "leaving-child":
    record()
    spawn("setsid")
    wait_for_pids(3)
    time.sleep(0.3)  # long enough for the runner to notice the grandchild, then orphan it
elif role == "setsid":
    os.setsid()
    record()
    time.sleep(300)
"""


def py(code: str) -> str:
    return f"{PY} -c {shlex.quote(code)}"


def tree_command(tmp_path: Path, role: str) -> tuple[str, Path]:
    script = tmp_path / "tree.py"
    script.write_text(TREE_SCRIPT)
    pidfile = tmp_path / "pids.txt"
    command = f"{PY} {shlex.quote(str(script))} {role} {shlex.quote(str(pidfile))}"
    return command, pidfile


def read_pids(pidfile: Path) -> list[int]:
    return [int(word) for word in pidfile.read_text().split()]


def still_running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def run(tmp_path: Path, command: str, **kwargs: object) -> RunOutcome:
    kwargs.setdefault("timeout_s", 30.0)
    return await run_experiment(
        command,
        cwd=tmp_path,
        log_path=tmp_path / "logs" / "run.log",
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.anyio
@pytest.mark.parametrize("code", [0, 3])
async def test_exit_code_and_interleaved_output(tmp_path: Path, code: int) -> None:
    command = py(
        "import sys\n"
        "print('one', flush=True)\n"
        "print('two', file=sys.stderr, flush=True)\n"
        "print('three', flush=True)\n"
        f"sys.exit({code})\n"
    )
    outcome = await run(tmp_path, command)

    assert outcome.exit_code == code
    assert not outcome.timed_out
    assert outcome.elapsed_at_kill_ms is None
    assert outcome.error is None
    log = (tmp_path / "logs" / "run.log").read_bytes()
    assert log == b"one\ntwo\nthree\n"
    assert outcome.output_bytes == len(log)
    assert outcome.tail == "one\ntwo\nthree\n"


@pytest.mark.anyio
async def test_tail_starts_at_a_line_boundary(tmp_path: Path) -> None:
    command = py("for i in range(100): print(f'line {i}')")
    outcome = await run(tmp_path, command, tail_bytes=50)

    log = (tmp_path / "logs" / "run.log").read_text()
    assert outcome.output_bytes == len(log)
    assert len(outcome.tail) <= 50
    assert outcome.tail.startswith("line ")
    assert outcome.tail.endswith("line 99\n")
    assert log.endswith("\n" + outcome.tail)


@pytest.mark.anyio
async def test_log_is_truncated_between_runs(tmp_path: Path) -> None:
    await run(tmp_path, py("print('first run, long output ' * 10)"))
    outcome = await run(tmp_path, py("print('second')"))
    assert (tmp_path / "logs" / "run.log").read_text() == "second\n"
    assert outcome.tail == "second\n"


@pytest.mark.anyio
async def test_env_is_added_to_the_inherited_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTORESEARCH_TEST_INHERITED", "from-parent")
    command = py(
        "import os\n"
        "print(os.environ['AUTORESEARCH_CYCLE'])\n"
        "print(os.environ['AUTORESEARCH_TEST_INHERITED'])\n"
    )
    outcome = await run(tmp_path, command, env={"AUTORESEARCH_CYCLE": "7"})

    assert outcome.exit_code == 0
    assert outcome.tail == "7\nfrom-parent\n"


@pytest.mark.anyio
async def test_runs_in_cwd(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    outcome = await run_experiment(
        py("import os; print(os.getcwd())"),
        cwd=workdir,
        log_path=tmp_path / "run.log",
        timeout_s=30,
    )
    assert Path(outcome.tail.strip()).resolve() == workdir.resolve()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_timeout_kills_the_whole_tree(tmp_path: Path, anyio_backend: str) -> None:
    command, pidfile = tree_command(tmp_path, "parent")
    calls: list[int] = []

    async def on_timeout(elapsed_ms: int) -> None:
        calls.append(elapsed_ms)

    outcome = await run(tmp_path, command, timeout_s=0.5, kill_grace_s=0.3, on_timeout=on_timeout)

    assert outcome.timed_out
    assert outcome.exit_code is None
    assert outcome.error is None
    assert len(calls) == 1
    assert calls[0] >= 500
    assert outcome.elapsed_at_kill_ms is not None
    assert outcome.elapsed_at_kill_ms >= calls[0]
    assert outcome.duration_ms >= outcome.elapsed_at_kill_ms
    pids = read_pids(pidfile)
    assert len(pids) == 3  # parent, child, and the grandchild that ignores SIGTERM
    assert [pid for pid in pids if still_running(pid)] == []


@pytest.mark.anyio
async def test_failing_on_timeout_callback_does_not_stop_the_kill(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def on_timeout(elapsed_ms: int) -> None:
        raise RuntimeError("handler broke")

    outcome = await run(
        tmp_path, py("import time; time.sleep(300)"), timeout_s=0.2, on_timeout=on_timeout
    )

    assert outcome.timed_out
    assert "on_timeout callback failed" in caplog.text


@pytest.mark.anyio
async def test_timeout_kills_a_grandchild_that_left_the_group(tmp_path: Path) -> None:
    command, pidfile = tree_command(tmp_path, "setsid-parent")

    outcome = await run(tmp_path, command, timeout_s=1.5, kill_grace_s=0.3, sample_interval_s=0.05)

    assert outcome.timed_out
    pids = read_pids(pidfile)
    assert len(pids) == 3
    assert [pid for pid in pids if still_running(pid)] == []


@pytest.mark.anyio
async def test_background_jobs_do_not_survive_a_normal_exit(tmp_path: Path) -> None:
    pidfile = tmp_path / "bg.pid"
    command = f"sleep 300 & echo $! > {shlex.quote(str(pidfile))}; echo done"

    outcome = await run(tmp_path, command)

    assert outcome.exit_code == 0
    assert outcome.tail == "done\n"
    (pid,) = read_pids(pidfile)
    assert not still_running(pid)


@pytest.mark.anyio
async def test_cancellation_kills_the_tree_and_propagates(tmp_path: Path) -> None:
    command, pidfile = tree_command(tmp_path, "parent")
    log_path = tmp_path / "logs" / "run.log"

    async def cancel_once_started(scope: anyio.CancelScope) -> None:
        await anyio.sleep(0.3)
        while not pidfile.exists() or len(read_pids(pidfile)) < 3:
            await anyio.sleep(0.02)
        scope.cancel()

    finished = False
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_once_started, scope)
            await run_experiment(
                command, cwd=tmp_path, log_path=log_path, timeout_s=60, kill_grace_s=0.3
            )
            finished = True

    assert scope.cancelled_caught
    assert not finished
    pids = read_pids(pidfile)
    assert len(pids) == 3
    assert [pid for pid in pids if still_running(pid)] == []
    open_files = {Path(f.path) for f in psutil.Process().open_files()}
    assert log_path not in open_files


@pytest.mark.anyio
async def test_large_output_goes_to_the_log_not_into_memory(tmp_path: Path) -> None:
    command = py(
        "import sys\n"
        "chunk = b'x' * (1024 * 1024)\n"
        "for _ in range(100):\n"
        "    sys.stdout.buffer.write(chunk)\n"
    )
    me = psutil.Process()
    before = me.memory_info().rss

    outcome = await run(tmp_path, command)

    grown = me.memory_info().rss - before
    assert outcome.exit_code == 0
    assert (tmp_path / "logs" / "run.log").stat().st_size == 100 * 1024 * 1024
    assert outcome.output_bytes == 100 * 1024 * 1024
    assert len(outcome.tail) == 64 * 1024
    assert grown < 30 * 1024 * 1024


@pytest.mark.anyio
async def test_one_huge_line_is_logged_whole_and_tail_is_bounded(tmp_path: Path) -> None:
    command = py("import sys; sys.stdout.write('y' * 20_000_000)")

    outcome = await run(tmp_path, command, tail_bytes=4096)

    assert outcome.exit_code == 0
    assert (tmp_path / "logs" / "run.log").stat().st_size == 20_000_000
    assert outcome.output_bytes == 20_000_000
    assert 0 < len(outcome.tail) <= 4096
    assert set(outcome.tail) == {"y"}


@pytest.mark.anyio
async def test_tail_does_not_start_inside_a_utf8_character(tmp_path: Path) -> None:
    command = py("import sys; sys.stdout.write('é' * 1000)")  # two bytes each, no newline

    outcome = await run(tmp_path, command, tail_bytes=101)

    assert outcome.exit_code == 0
    assert outcome.tail == "é" * 50


@pytest.mark.anyio
async def test_peak_memory_of_the_tree_is_sampled(tmp_path: Path) -> None:
    command = py(
        "import time\n"
        "block = b'\\x01' * (200 * 1024 * 1024)\n"  # filled, so the pages are resident
        "time.sleep(1)\n"
    )

    outcome = await run(tmp_path, command, sample_interval_s=0.05)

    assert outcome.exit_code == 0
    assert outcome.peak_rss_gb is not None
    assert outcome.peak_rss_gb >= 0.15


@pytest.mark.anyio
async def test_missing_cwd_is_reported_not_raised(tmp_path: Path) -> None:
    outcome = await run_experiment(
        "echo hello",
        cwd=tmp_path / "does-not-exist",
        log_path=tmp_path / "run.log",
        timeout_s=5,
    )

    assert outcome.exit_code is None
    assert not outcome.timed_out
    assert outcome.error is not None
    assert outcome.error.startswith("could not start the run command: ")
    assert "does-not-exist" in outcome.error


@pytest.mark.anyio
async def test_unwritable_log_is_reported_and_nothing_runs(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the log directory should be")
    marker = tmp_path / "ran"

    outcome = await run_experiment(
        f"touch {shlex.quote(str(marker))}",
        cwd=tmp_path,
        log_path=blocker / "run.log",
        timeout_s=5,
    )

    assert outcome.exit_code is None
    assert outcome.error is not None
    assert outcome.error.startswith("could not open the log file")
    assert not marker.exists()
    assert blocker.read_text() == "a file where the log directory should be"


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A real, small filesystem mounted at ``path``; skips the test where mounting is refused."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root and tmpfs mounts to fill a disk for real")
    path.mkdir(parents=True, exist_ok=True)
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]
    if subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs is not allowed here")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


# Writes 100 bytes at a time straight to the descriptor, ignoring failed writes, then exits 0:
# on a full disk the end of the output (the metric) is lost without the exit code saying so.
LOSES_ITS_END = (
    "import os\n"
    "for line in [b'x' * 99 + b'\\n'] * 5000 + [b'val_bpb: 0.5\\n']:\n"
    "    try:\n"
    "        os.write(1, line)\n"
    "    except OSError:\n"
    "        pass\n"
)


@pytest.mark.anyio
async def test_a_disk_that_fills_up_is_reported_as_full(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "logs", "256k"):
        outcome = await run(tmp_path, py(LOSES_ITS_END))

        assert outcome.exit_code == 0
        assert outcome.disk_full
        assert outcome.output_bytes < 5000 * 100  # the log was cut off
        assert "val_bpb" not in outcome.tail
        # The probe gave back what it took: the log ends where the run's output ended.
        assert (tmp_path / "logs" / "run.log").stat().st_size == outcome.output_bytes


@pytest.mark.anyio
async def test_a_disk_low_on_space_is_not_full(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "logs", "256k"):
        (tmp_path / "logs" / "filler").write_bytes(b"f" * (200 * 1024))  # about 56k stay free

        outcome = await run(tmp_path, py("print('val_bpb: 0.5'); raise SystemExit(3)"))

        assert outcome.exit_code == 3
        assert not outcome.disk_full
        assert outcome.tail == "val_bpb: 0.5\n"


@pytest.mark.anyio
async def test_a_run_whose_metric_was_lost_to_a_full_disk_says_so(repo: Path) -> None:
    worker = NeuroLink().create_research_worker(
        base_config(repo),
        proposer=ScriptedProposer(
            [ScriptedStep("loud", [Edit(path="train.py", content=LOSES_ITS_END)])]
        ),
    )
    await worker.run_experiment_cycle()
    logs = repo / ".autoresearch" / "logs"
    with tmpfs(logs, "256k"):
        result = await worker.run_experiment_cycle()
    await worker.aclose()

    assert result.status == "crash"
    assert result.description.endswith(
        f"(no val_bpb in the output; the disk holding {logs} filled up, so the log is probably "
        "truncated (free some space))"
    )


@pytest.mark.anyio
async def test_a_crash_on_a_disk_low_on_space_is_a_plain_exit_code(repo: Path) -> None:
    crash = "print('val_bpb: 0.5')\nraise SystemExit(3)\n"
    worker = NeuroLink().create_research_worker(
        base_config(repo),
        proposer=ScriptedProposer([ScriptedStep("exit 3", [Edit(path="train.py", content=crash)])]),
    )
    await worker.run_experiment_cycle()
    logs = repo / ".autoresearch" / "logs"
    with tmpfs(logs, "256k"):
        (logs / "filler").write_bytes(b"f" * (200 * 1024))
        result = await worker.run_experiment_cycle()
    await worker.aclose()

    assert result.status == "crash"
    assert result.description.endswith("(exit code 3)")
    assert "full" not in result.description
