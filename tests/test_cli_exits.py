"""How the CLI ends: signals at any moment, a lost terminal, errors inside task groups,
a read-only repository, the lock's pid under a race, and REPO found from a subdirectory.

Everything runs for real: `autoresearch` as a subprocess (under a pseudo-terminal where the
terminal matters), real git repositories, real read-only mounts (in a private mount namespace,
skipped where that is not allowed).
"""

from __future__ import annotations

import json
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import typer
from typer.testing import CliRunner

from autoresearch.cli import app
from autoresearch.errors import ConfigError, GitError
from tests.conftest import git, make_repo, snapshot
from tests.test_cli import (
    SEED_INIT,
    TRAIN,
    _in_experiment,
    _processes_in,
    _wait_for,
    run_until_cycle_2_runs,
)

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "autoresearch"]


@pytest.fixture
def cli_repo(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "repo", {"train.py": TRAIN, "program.md": "Lower val_bpb.\n"})
    result = runner.invoke(app, ["init", str(repo), *SEED_INIT])
    assert result.exit_code == 0, result.output
    return repo


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def ledger(repo: Path) -> list[dict[str, object]]:
    path = repo / ".autoresearch" / "runs.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def state_of(repo: Path) -> dict[str, object] | None:
    path = repo / ".autoresearch" / "state.json"
    return json.loads(path.read_text()) if path.exists() else None


def assert_consistent(repo: Path) -> None:
    """Idle or never started; ledgers complete; the tree clean at the best commit."""
    state, runs = state_of(repo), ledger(repo)
    assert git(repo, "status", "--porcelain") == ""
    assert [r["cycle"] for r in runs] == list(range(1, len(runs) + 1))
    if state is not None:
        assert state["phase"] == "idle" and state["currentCycle"] is None
        assert state["cycleCount"] == len(runs)
        if state["bestCommit"]:
            assert git(repo, "rev-parse", "HEAD") == state["bestCommit"]
    assert not _processes_in(repo), "no experiment is left running"


def kill_experiments(repo: Path) -> None:
    for process in _processes_in(repo):
        process.kill()


# -- signals ------------------------------------------------------------------------------


def _handles_signals(pid: int) -> bool:
    """Whether the process catches SIGTERM and SIGHUP yet (Linux: SigCgt in /proc)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line for line in text.splitlines() if line.startswith("SigCgt:"))
    mask = int(caught.split()[1], 16)
    return all(mask >> (s - 1) & 1 for s in (signal.SIGTERM, signal.SIGHUP))


needs_proc = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="needs /proc/<pid>/status (Linux)"
)

STOP_LINES = (
    "stopping: killing the experiment, restoring the best commit…",
    "stopped: the interrupted cycle is recorded as crash",
)


@needs_proc
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
@pytest.mark.parametrize("delay", [0.0, 0.01, 0.05, 0.15, 0.4])
def test_a_signal_at_start_is_one_line_and_changes_nothing_half_way(
    cli_repo: Path, signum: signal.Signals, delay: float
) -> None:
    """From the moment the program runs until research is under way, every signal ends it
    with its exit code (128 + number) and one line; the repository stays consistent."""
    proc = subprocess.Popen(
        [*CLI, "run", str(cli_repo), "--quiet"],
        env={**os.environ, "SLOW_FROM": "2"},  # it never ends by itself
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not _handles_signals(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.001)
        assert _handles_signals(proc.pid), "SIGTERM and SIGHUP are handled from the start"
        time.sleep(delay)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        kill_experiments(cli_repo)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    name = signum.name
    if len(lines) == 1:  # before research started: nothing changed, or the setup finished
        assert lines[0] in (
            f"interrupted ({name}) before research started; nothing was changed",
            f"interrupted ({name}) before research started; no cycle was run",
        ), err
    else:  # research was under way: the cycle was cancelled and recorded
        last = ledger(cli_repo)[-1]
        # A signal that lands after the run was measured (the baseline finishes quickly) is
        # recorded with what the run measured; otherwise the cycle is a crash. Either way the
        # line names exactly what the ledger holds.
        if last["status"] == "keep":
            assert last["metric"] is not None, last
        else:
            assert last["status"] == "crash", last
        expected = STOP_LINES[1].replace("crash", str(last["status"]))
        assert lines == [f"{name}: {STOP_LINES[0]}", expected], err
    assert_consistent(cli_repo)


def test_sigterm_before_python_runs_our_code_still_leaves_the_repo_alone(
    cli_repo: Path,
) -> None:
    """A signal sent the instant the process starts may come before any of our code runs:
    then it dies by the signal, silently, and nothing was touched."""
    before = snapshot(cli_repo)
    proc = subprocess.Popen(
        [*CLI, "run", str(cli_repo), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (-signal.SIGTERM, 128 + signal.SIGTERM), err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 1
    if proc.returncode < 0 or "nothing was changed" in err:
        assert snapshot(cli_repo) == before


def test_sigterm_during_the_experiment_exits_143_after_the_cleanup(cli_repo: Path) -> None:
    proc = subprocess.Popen(
        [*CLI, "run", str(cli_repo), "--quiet"],
        env={**os.environ, "SLOW_FROM": "2"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: _in_experiment(cli_repo / ".autoresearch" / "state.json", cycle=2))
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        kill_experiments(cli_repo)
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == [f"SIGTERM: {STOP_LINES[0]}", STOP_LINES[1]]
    assert [r["status"] for r in ledger(cli_repo)] == ["keep", "crash"]
    assert_consistent(cli_repo)


def _read_all(fd: int, until: float) -> bytes:
    data = b""
    while time.monotonic() < until:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if not ready:
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data


# Run in a new session: take stdin (the pty) as the controlling terminal, then become the CLI.
WITH_TERMINAL = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


@needs_proc
def test_closing_the_terminal_mid_experiment_cleans_up_like_ctrl_c(cli_repo: Path) -> None:
    """SIGHUP from a lost terminal (the pty's master closed, as when SSH drops): the
    experiment is killed, the tree restored, the cycle recorded, exit 129; printing to the
    dead terminal (the live panel, the messages) does not get in the way."""
    master, slave = os.openpty()
    proc = subprocess.Popen(  # not --quiet: the live panel draws on the terminal
        [sys.executable, "-c", WITH_TERMINAL, *CLI[1:], "run", str(cli_repo)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, "SLOW_FROM": "2", "TERM": "xterm"},
        start_new_session=True,
    )
    os.close(slave)
    state_path = cli_repo / ".autoresearch" / "state.json"
    try:

        def running_cycle_2() -> bool:
            _read_all(master, time.monotonic() + 0.05)  # keep the terminal drained
            return _in_experiment(state_path, cycle=2)

        _wait_for(running_cycle_2)
        time.sleep(0.5)
        experiment = _processes_in(cli_repo)
        assert experiment
        os.close(master)  # the terminal is gone: the kernel sends SIGHUP
        returncode = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        kill_experiments(cli_repo)
    assert returncode == 129
    runs = ledger(cli_repo)
    assert [r["status"] for r in runs] == ["keep", "crash"]
    assert "cancelled in execute" in str(runs[1]["description"])
    assert (cli_repo / "train.py").read_text() == TRAIN
    assert_consistent(cli_repo)
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in experiment)
    code, out, _ = invoke("status", str(cli_repo))
    assert code == 0 and "not running" in out


# -- status: a live run or an interrupted one ---------------------------------------------


def test_status_tells_a_running_process_from_a_dead_one(cli_repo: Path) -> None:
    proc = run_until_cycle_2_runs(cli_repo)
    try:
        code, out, _ = invoke("status", str(cli_repo))
        assert code == 0 and f"running (pid {proc.pid})" in out
        assert "phase            execute" in out
        code, out, _ = invoke("status", str(cli_repo), "--json")
        data = json.loads(out)
        assert (data["running"], data["pid"], data["interrupted"]) == (True, proc.pid, False)

        proc.kill()  # kill -9: no cleanup, state.json still says execute
        proc.wait(timeout=30)
        code, out, _ = invoke("status", str(cli_repo))
        assert code == 0
        assert "interrupted in execute; the next run recovers it" in out
        assert "running (pid" not in out
        data = json.loads(invoke("status", str(cli_repo), "--json")[1])
        assert (data["running"], data["pid"], data["interrupted"]) == (False, None, True)
        assert data["phase"] == "execute"
    finally:
        if proc.poll() is None:
            proc.kill()
        kill_experiments(cli_repo)
    code, _, err = invoke("run-once", str(cli_repo))
    assert code == 0, err
    code, out, _ = invoke("status", str(cli_repo))
    assert "not running" in out and "phase            idle" in out
    data = json.loads(invoke("status", str(cli_repo), "--json")[1])
    assert (data["running"], data["interrupted"]) == (False, False)


# -- errors inside task groups, OSError, read-only repositories ---------------------------


def _read_only_mounts_work(tmp_path: Path) -> list[str] | None:
    """The command prefix that runs in a private mount namespace, if this machine allows it."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return None
    prefix = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-r", "-m"]
    probe = tmp_path / "probe"
    probe.mkdir()
    q = shlex.quote(str(probe))
    script = f"mount --bind {q} {q} && mount -o remount,ro,bind {q} {q} && ! touch {q}/x"
    done = subprocess.run([*prefix, "sh", "-c", script], capture_output=True, check=False)
    return prefix if done.returncode == 0 else None


def _run_with_read_only(
    prefix: list[str], read_only: list[Path], args: list[str]
) -> subprocess.CompletedProcess[str]:
    mounts = " && ".join(
        f"mount --bind {shlex.quote(str(p))} {shlex.quote(str(p))} && "
        f"mount -o remount,ro,bind {shlex.quote(str(p))} {shlex.quote(str(p))}"
        for p in read_only
    )
    script = f"{mounts} && exec {shlex.join([*CLI, *args])}"
    return subprocess.run(
        [*prefix, "sh", "-c", script], capture_output=True, text=True, timeout=120, check=False
    )


def test_a_read_only_repository_is_one_line_naming_the_path(cli_repo: Path, tmp_path: Path) -> None:
    prefix = _read_only_mounts_work(tmp_path)
    if prefix is None:
        pytest.skip("read-only bind mounts are not allowed here")
    before = snapshot(cli_repo)
    done = _run_with_read_only(prefix, [cli_repo], ["run-once", str(cli_repo), "--quiet"])
    lock = cli_repo / ".autoresearch" / "lock"
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [f"error: cannot write {lock}: Read-only file system"]
    assert snapshot(cli_repo) == before
    status = _run_with_read_only(prefix, [cli_repo], ["status", str(cli_repo)])
    assert status.returncode == 0, status.stderr  # reading still works
    assert "not running" in status.stdout


def test_an_engine_error_inside_the_task_group_is_one_line(cli_repo: Path, tmp_path: Path) -> None:
    """The commit phase fails (git's object store is read-only) inside the cycle, which runs in
    a task group: the error comes out wrapped in an ExceptionGroup, and is reported as the
    GitError it is, in one line, exit 1, no traceback."""
    prefix = _read_only_mounts_work(tmp_path)
    if prefix is None:
        pytest.skip("read-only bind mounts are not allowed here")
    assert invoke("run-once", str(cli_repo))[0] == 0  # the baseline commits nothing
    objects = cli_repo / ".git" / "objects"
    done = _run_with_read_only(prefix, [objects], ["run-once", str(cli_repo), "--quiet"])
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "ExceptionGroup" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines[-1].startswith("error: committing: ") and "Read-only file system" in lines[-1]
    assert all(line.startswith(("error: ", "warning: ")) for line in lines), lines
    assert_consistent(cli_repo)
    assert ledger(cli_repo)[-1]["status"] == "crash"

    debug = _run_with_read_only(prefix, [objects], ["--debug", "run-once", str(cli_repo), "-q"])
    assert "Traceback" in debug.stderr  # --debug still shows everything


def test_exception_groups_are_unwrapped_to_their_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from autoresearch.cli.errors import _errors

    def fail(exc: BaseException) -> tuple[int, str]:
        with pytest.raises(typer.Exit) as info, _errors():
            raise exc
        return info.value.exit_code, capsys.readouterr().err

    nested = ExceptionGroup("outer", [ExceptionGroup("inner", [ConfigError("tag: bad")])])
    assert fail(nested) == (2, "error: tag: bad\n")
    several = ExceptionGroup("g", [GitError("committing: locked"), OSError("x"), ValueError()])
    assert fail(several) == (1, "error: committing: locked (and 2 more errors)\n")
    denied = PermissionError(13, "Permission denied", "/r/.autoresearch/.state.json.tmp")
    assert fail(ExceptionGroup("g", [denied])) == (
        1,
        "error: cannot access /r/.autoresearch/state.json: Permission denied\n",
    )


# -- the lock's pid -----------------------------------------------------------------------

RACER = """\
import os, sys
from pathlib import Path
import anyio
from autoresearch.errors import LockedError
from autoresearch.workspace import Workspace

workspace = Workspace(Path(sys.argv[1]))
for line in sys.stdin:
    try:
        handle = anyio.run(workspace.acquire_lock)
    except LockedError as exc:
        print("lost", exc.pid, str(exc), flush=True)
        continue
    print("won", os.getpid(), flush=True)
    sys.stdin.readline()  # hold the lock until told
    anyio.run(workspace.release_lock, handle)
    print("released", flush=True)
"""


def test_the_loser_of_a_lock_race_always_names_the_winner(tmp_path: Path) -> None:
    """Two processes race for the lock, released together each round: the loser's message
    always has the winner's pid (it used to read the file between truncate and write)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    script = tmp_path / "racer.py"
    script.write_text(RACER)
    racers = [
        subprocess.Popen(
            [sys.executable, str(script), str(repo)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for _ in range(2)
    ]
    try:
        for round_ in range(200):
            for racer in racers if round_ % 2 else racers[::-1]:
                assert racer.stdin is not None
                racer.stdin.write("go\n")
                racer.stdin.flush()
            lines = [racer.stdout.readline().rstrip("\n") for racer in racers]  # type: ignore[union-attr]
            won = [i for i, line in enumerate(lines) if line.startswith("won ")]
            assert len(won) == 1, lines
            winner, loser = racers[won[0]], racers[1 - won[0]]
            pid = lines[won[0]].split()[1]
            assert lines[1 - won[0]].startswith(f"lost {pid} another autoresearch process "), lines
            assert f"(pid {pid}) is running on this repo" in lines[1 - won[0]]
            assert winner.stdin is not None and winner.stdout is not None
            winner.stdin.write("release\n")
            winner.stdin.flush()
            assert winner.stdout.readline().strip() == "released"
            assert loser.poll() is None
    finally:
        for racer in racers:
            if racer.stdin is not None:
                racer.stdin.close()
            racer.wait(timeout=30)


# -- REPO: the enclosing repository --------------------------------------------------------


def test_repo_defaults_to_the_repository_of_the_current_directory(
    cli_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = cli_repo / "sub" / "deeper"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    code, _, err = invoke("run-once")
    assert code == 0, err
    for args in (["status"], ["status", "."], ["status", str(sub)]):
        code, out, err = invoke(*args)
        assert code == 0, (args, err)
        assert "autoresearch/run1" in out and "1 (1 kept)" in out
    code, out, _ = invoke("results", "--json")
    assert [r["cycle"] for r in json.loads(out)] == [1]
    code, out, _ = invoke("show", "1")  # one argument: the cycle
    assert code == 0 and out.startswith("cycle 1: keep")
    code, out, _ = invoke("show", "..", "1")  # REPO CYCLE, REPO a folder inside the repo
    assert code == 0 and out.startswith("cycle 1: keep")
    code, _, err = invoke("show", "one")
    assert code == 2
    assert err == "error: CYCLE must be a cycle number, got 'one' (show [REPO] CYCLE)\n"
    code, _, err = invoke("show")
    assert code == 2 and "missing CYCLE" in err

    outside = tmp_path / "outside"
    outside.mkdir()
    monkeypatch.chdir(outside)
    for command in ("status", "run-once", "results", "reset"):
        code, _, err = invoke(command)
        assert code == 2, command
        assert err == "error: not inside a git repository; pass REPO (the repository to research)\n"
    code, _, err = invoke("status", str(outside))  # named, but not a repository: said so
    assert code == 2 and "not initialised" in err


def test_init_from_a_subdirectory_sets_up_the_enclosing_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path / "fresh", {"train.py": TRAIN, "src/keep.txt": "x\n"})
    monkeypatch.chdir(repo / "src")
    args = [a for a in SEED_INIT if a not in ("--immutable", "program.md")]
    code, out, err = invoke("init", *args)
    assert code == 0, err
    assert err == f"note: using the repository at {repo}; the paths given are relative to it\n"
    assert (repo / ".autoresearch" / "config.json").exists()
    assert not (repo / "src" / ".autoresearch").exists()
    assert f"Initialised {repo} on branch autoresearch/run1" in out
    assert "Next: autoresearch run-once   (or: autoresearch run)" in out
