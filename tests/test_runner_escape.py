"""Processes that escape the run's process tree: daemons that double-fork and leave the session.

Each run carries its own ``AUTORESEARCH_RUN_ID``. A test reads it back from the run, then checks
that no living process on the machine carries it once ``run_experiment`` has returned, and that
the run left no zombie behind among the test process's children (the engine is their subreaper).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import anyio
import psutil
import pytest

from autoresearch.runner import RunOutcome, run_experiment

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(shutil.which("setsid") is None, reason="needs setsid (util-linux)"),
]

# A daemon records its pid and sleeps; it ignores SIGTERM, so a timeout has to use SIGKILL.
DAEMON = "trap '' TERM\necho $$ >> daemons\nexec sleep 600\n"
# Two ways to leave the run: setsid -f (new session, re-parented at once), and a double fork
# through a shell whose parent exits (re-parented, still in the run's session and group).
ESCAPE = (
    'echo "$AUTORESEARCH_RUN_ID" > run_id\n'
    "setsid -f sh daemon.sh\n"
    "sh -c 'sh daemon.sh &' &\n"
    'until [ -f daemons ] && [ "$(wc -l < daemons)" -ge 2 ]; do sleep 0.01; done\n'
)


def write_scripts(tmp_path: Path, then: str) -> str:
    (tmp_path / "daemon.sh").write_text(DAEMON)
    (tmp_path / "run.sh").write_text(ESCAPE + then)
    return "sh run.sh"


def pids_in(path: Path) -> list[int]:
    return [int(word) for word in path.read_text().split()] if path.exists() else []


def alive(pids: list[int]) -> list[int]:
    """The ``pids`` still running (a zombie has exited)."""
    found = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                found.append(pid)
        except psutil.NoSuchProcess:
            continue
    return found


async def still_alive(pids: list[int]) -> list[int]:
    """The ``pids`` still running after a bounded moment (a SIGKILL takes effect promptly)."""
    with anyio.move_on_after(5):
        while alive(pids):
            await anyio.sleep(0.05)
    return alive(pids)


def carrying(run_id: str) -> list[psutil.Process]:
    """Every living process whose environment carries ``run_id``."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and (
                proc.environ().get("AUTORESEARCH_RUN_ID") == run_id
            ):
                found.append(proc)
        except psutil.Error:
            continue
    return found


async def survivors(run_id: str) -> list[psutil.Process]:
    """The processes of the run still alive, after giving them a bounded moment to go."""
    with anyio.move_on_after(5):
        while await anyio.to_thread.run_sync(carrying, run_id):
            await anyio.sleep(0.05)
    return carrying(run_id)


def zombie_children(since: float, *, keep: frozenset[int] = frozenset()) -> list[int]:
    """Zombies among this process's children created after ``since`` (less ``keep``)."""
    found = []
    for child in psutil.Process().children():
        try:
            if (
                child.pid not in keep
                and child.status() == psutil.STATUS_ZOMBIE
                and child.create_time() >= since - 0.05
            ):
                found.append(child.pid)
        except psutil.Error:
            continue
    return found


def kill_and_reap(proc: psutil.Process) -> None:
    """Clean up after a test: ``proc`` is a child of this process (or gone)."""
    try:
        proc.kill()
        proc.wait(5)
    except psutil.Error:
        pass


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_setsid_and_double_fork_daemons_do_not_outlive_a_normal_exit(
    tmp_path: Path, anyio_backend: str
) -> None:
    since = time.time()
    command = write_scripts(tmp_path, "echo done\n")

    outcome = await run_experiment(command, cwd=tmp_path, log_path=tmp_path / "log", timeout_s=30)

    assert outcome.exit_code == 0 and outcome.tail == "done\n"
    daemons = pids_in(tmp_path / "daemons")
    assert len(daemons) == 2
    assert await still_alive(daemons) == []
    run_id = (tmp_path / "run_id").read_text().strip()
    assert len(run_id) == 32
    assert await survivors(run_id) == []
    assert zombie_children(since) == []


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_setsid_and_double_fork_daemons_are_killed_on_timeout(
    tmp_path: Path, anyio_backend: str
) -> None:
    since = time.time()
    command = write_scripts(tmp_path, "sleep 600\n")

    outcome = await run_experiment(
        command, cwd=tmp_path, log_path=tmp_path / "log", timeout_s=1.0, kill_grace_s=0.3
    )

    assert outcome.timed_out
    daemons = pids_in(tmp_path / "daemons")
    assert len(daemons) == 2
    assert await still_alive(daemons) == []
    assert await survivors((tmp_path / "run_id").read_text().strip()) == []
    assert zombie_children(since) == []


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_setsid_and_double_fork_daemons_are_killed_on_cancel(
    tmp_path: Path, anyio_backend: str
) -> None:
    since = time.time()
    command = write_scripts(tmp_path, "sleep 600\n")

    async def cancel_once_the_daemons_run(scope: anyio.CancelScope) -> None:
        while len(pids_in(tmp_path / "daemons")) < 2:
            await anyio.sleep(0.02)
        scope.cancel()

    finished = False
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_once_the_daemons_run, scope)
            await run_experiment(
                command, cwd=tmp_path, log_path=tmp_path / "log", timeout_s=60, kill_grace_s=0.3
            )
            finished = True

    assert scope.cancelled_caught and not finished
    assert await still_alive(pids_in(tmp_path / "daemons")) == []
    assert await survivors((tmp_path / "run_id").read_text().strip()) == []
    assert zombie_children(since) == []


async def test_other_children_of_the_engine_are_left_alone(tmp_path: Path) -> None:
    """A child the engine's host started, a zombie it has not waited for yet, and an orphan
    that re-parented to the engine during the run are not the run's: none is killed or reaped.
    Once the run is over, orphans go to init again (the subreaper is held only during runs)."""
    since = time.time()
    env = {k: v for k, v in os.environ.items() if k != "AUTORESEARCH_RUN_ID"}
    sleeper = subprocess.Popen(["sleep", "600"], env=env)
    exited = subprocess.Popen(["sh", "-c", "exit 7"], env=env)
    with anyio.fail_after(5):
        while psutil.Process(exited.pid).status() != psutil.STATUS_ZOMBIE:
            await anyio.sleep(0.01)
    outside_pid = tmp_path / "outside.pid"
    command = write_scripts(tmp_path, "until [ -f go ]; do sleep 0.01; done\necho done\n")
    outcomes: list[RunOutcome] = []

    async def run() -> None:
        outcomes.append(
            await run_experiment(command, cwd=tmp_path, log_path=tmp_path / "log", timeout_s=30)
        )

    async def start_an_orphan_of_our_own() -> None:
        while len(pids_in(tmp_path / "daemons")) < 2:
            await anyio.sleep(0.02)
        await anyio.run_process(  # no pipes: the daemon would hold them open
            ["setsid", "-f", "sh", "-c", f"echo $$ > {outside_pid}; exec sleep 600"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while not pids_in(outside_pid):
            await anyio.sleep(0.01)
        (tmp_path / "go").touch()

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            tg.start_soon(start_an_orphan_of_our_own)

    (outside,) = [psutil.Process(pid) for pid in pids_in(outside_pid)]
    try:
        assert outcomes[0].exit_code == 0
        assert await survivors((tmp_path / "run_id").read_text().strip()) == []
        assert sleeper.poll() is None
        assert outside.is_running() and outside.status() != psutil.STATUS_ZOMBIE
        assert outside.ppid() == os.getpid()  # it came to the engine during the run
        assert exited.wait(5) == 7  # still ours to reap: the engine did not take it
        assert zombie_children(since) == []

        await anyio.run_process(["setsid", "-f", "sh", "-c", f"echo $$ > {outside_pid}"])
        with anyio.fail_after(5):
            while not pids_in(outside_pid):
                await anyio.sleep(0.01)
        (later,) = pids_in(outside_pid)
        assert later not in {child.pid for child in psutil.Process().children()}
    finally:
        sleeper.kill()
        sleeper.wait()
        kill_and_reap(outside)


async def test_concurrent_runs_only_kill_their_own_daemons(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    long_command = write_scripts(first, "until [ -f go ]; do sleep 0.01; done\n")
    short_command = write_scripts(second, "echo done\n")
    seen_after_second: list[int] = []

    async def long_run() -> None:
        await run_experiment(long_command, cwd=first, log_path=first / "log", timeout_s=30)

    async def short_run_then_release_the_long_one() -> None:
        while len(pids_in(first / "daemons")) < 2:
            await anyio.sleep(0.02)
        await run_experiment(short_command, cwd=second, log_path=second / "log", timeout_s=30)
        run_id = (first / "run_id").read_text().strip()
        seen_after_second.extend(proc.pid for proc in carrying(run_id))
        (first / "go").touch()

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(long_run)
            tg.start_soon(short_run_then_release_the_long_one)

    assert set(pids_in(first / "daemons")) <= set(seen_after_second)
    assert await survivors((second / "run_id").read_text().strip()) == []
    assert await survivors((first / "run_id").read_text().strip()) == []
