"""The CLI through typer's test runner, and `run` + Ctrl-C through a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from autoresearch.cli import app, neurolink_app
from tests.conftest import PY, git, make_repo, snapshot

runner = CliRunner()

SEED_INIT = [
    "--tag", "run1",
    "--target", "train.py",
    "--immutable", "program.md",
    "--run-command", f"{PY} train.py",
    "--metric-name", "val_bpb",
    "--metric-pattern", "^val_bpb:\\s+([\\d.]+)",
    "--metric-direction", "lower",
    "--timeout", "120",
]  # fmt: skip

TRAIN = """\
import os, time
X = 3.0
Y = 2
if int(os.environ.get("AUTORESEARCH_CYCLE", "1")) >= int(os.environ.get("SLOW_FROM", "999")):
    time.sleep(120)
print(f"val_bpb: {(X - 1) ** 2 + (Y - 4) ** 2 + 1:.6f}")
"""


@pytest.fixture
def cli_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"train.py": TRAIN, "program.md": "Lower val_bpb.\n"})


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_seed_invocations_verbatim(cli_repo: Path) -> None:
    result = runner.invoke(neurolink_app, ["autoresearch", "init", str(cli_repo), *SEED_INIT])
    assert result.exit_code == 0, result.output
    config = json.loads((cli_repo / ".autoresearch" / "config.json").read_text())
    assert config["tag"] == "run1"
    assert config["mutablePaths"] == ["train.py"]
    assert config["immutablePaths"] == ["program.md"]
    assert config["metric"] == {
        "name": "val_bpb",
        "pattern": "^val_bpb:\\s+([\\d.]+)",
        "direction": "lower",
    }
    assert config["timeoutMs"] == 120_000
    assert git(cli_repo, "rev-parse", "--abbrev-ref", "HEAD") == "autoresearch/run1"

    for command in ("run-once", "status", "results"):
        result = runner.invoke(neurolink_app, ["autoresearch", command, str(cli_repo)])
        assert result.exit_code == 0, (command, result.output)
    status_out = runner.invoke(app, ["status", str(cli_repo)]).stdout
    assert "autoresearch/run1" in status_out and "1 (1 kept)" in status_out
    results_out = runner.invoke(app, ["results", str(cli_repo)]).stdout
    assert "baseline" in results_out and "keep" in results_out
    result = runner.invoke(neurolink_app, ["autoresearch", "reset", str(cli_repo), "--yes"])
    assert result.exit_code == 0 and "archived the session" in result.stdout
    assert not (cli_repo / ".autoresearch" / "config.json").exists()
    [archive] = (cli_repo / ".autoresearch" / "archive").iterdir()
    assert (archive / "config.json").exists() and (archive / "runs.jsonl").exists()
    assert git(cli_repo, "rev-parse", "--abbrev-ref", "HEAD") == "autoresearch/run1"


def test_run_results_show_and_json(cli_repo: Path) -> None:
    assert invoke("init", str(cli_repo), *SEED_INIT)[0] == 0
    code, out, _ = invoke("run", str(cli_repo), "--max-runs", "4")
    assert code == 0
    lines = [line for line in out.splitlines() if line.startswith("cycle")]
    assert len(lines) == 4 and "baseline" in lines[0]

    code, out, _ = invoke("results", str(cli_repo), "--json")
    rows = json.loads(out)  # nothing but JSON on stdout
    assert [r["cycle"] for r in rows] == [1, 2, 3, 4]
    assert rows[1]["description"] and rows[1]["commit"]
    code, out, _ = invoke("results", str(cli_repo), "--json", "--limit", "2")
    assert [r["cycle"] for r in json.loads(out)] == [3, 4]

    code, out, _ = invoke("status", str(cli_repo), "--json")
    state = json.loads(out)
    assert state["cycleCount"] == 4 and state["branch"] == "autoresearch/run1"

    code, out, _ = invoke("show", str(cli_repo), "2")
    assert code == 0
    assert rows[1]["description"] in out
    assert "diff --git a/train.py b/train.py" in out
    assert "val_bpb:" in out  # the log tail


def test_init_twice_refuses_then_force_keeps_results(cli_repo: Path) -> None:
    assert invoke("init", str(cli_repo), *SEED_INIT)[0] == 0
    assert invoke("run-once", str(cli_repo))[0] == 0
    code, out, err = invoke("init", str(cli_repo), *SEED_INIT)
    assert code == 2
    assert "already initialised" in err and "--force" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = invoke("init", str(cli_repo), *SEED_INIT[:-2], "--timeout", "30", "--force")
    assert code == 0, err
    assert (
        json.loads((cli_repo / ".autoresearch" / "config.json").read_text())["timeoutMs"] == 30_000
    )
    assert len((cli_repo / ".autoresearch" / "runs.jsonl").read_text().splitlines()) == 1


@pytest.mark.parametrize("command", ["status", "run-once", "results", "run", "show"])
def test_not_initialised(cli_repo: Path, command: str) -> None:
    before = snapshot(cli_repo)
    args = [command, str(cli_repo)] + (["1"] if command == "show" else [])
    code, _, err = invoke(*args)
    assert code == 2
    assert "not initialised" in err and "autoresearch init" in err
    assert len(err.strip().splitlines()) == 1
    assert snapshot(cli_repo) == before


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (["--timeout", "abc"], "--timeout"),
        (["--metric-direction", "up"], "--metric-direction"),
        (["--timeout", "0"], "--timeout must be a positive number of seconds, got 0"),
        (["--timeout", "inf"], "--timeout must be a positive number of seconds, got inf"),
        (["--timeout", "nan"], "--timeout must be a positive number of seconds, got nan"),
        (["--timeout", "-1"], "--timeout must be a positive number of seconds, got -1"),
        (["--kill-grace", "nan"], "--kill-grace must be a number of seconds >= 0, got nan"),
        (["--kill-grace", "inf"], "--kill-grace must be a number of seconds >= 0, got inf"),
        (["--tag", "-x"], "'-x' cannot name a git branch: it must start with a letter or digit"),
        (["--tag", "a..b"], "'a..b' cannot name a git branch: it cannot contain '..'"),
        (["--tag", "run."], "cannot end with '.' or '.lock'"),
        (["--tag", "run.lock"], "cannot end with '.' or '.lock'"),
        (["--tag", "a/b"], "it contains '/'; use only letters, digits"),
        (["--metric-pattern", "no group"], "capture group"),
        (["--target", "../x.py"], "mutable_paths"),
        (["--target", "missing.py"], "does not exist"),
    ],
)
def test_bad_init_input_is_one_line_exit_2_and_writes_nothing(
    cli_repo: Path, change: list[str], words: str
) -> None:
    before = snapshot(cli_repo)
    args = list(SEED_INIT)
    flag = change[0]
    if flag in args:
        args[args.index(flag) + 1] = change[1]
    else:
        args += change
    code, out, err = invoke("init", str(cli_repo), *args)
    assert code == 2
    assert words in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err + out
    assert snapshot(cli_repo) == before


def test_a_timeout_below_a_millisecond_counts_as_one(cli_repo: Path) -> None:
    args = list(SEED_INIT)
    args[args.index("--timeout") + 1] = "0.0001"
    code, out, err = invoke("init", str(cli_repo), *args)
    assert code == 0, err
    assert json.loads((cli_repo / ".autoresearch" / "config.json").read_text())["timeoutMs"] == 1
    assert "timeout 0.001 s" in out


def test_show_missing_cycle(cli_repo: Path) -> None:
    invoke("init", str(cli_repo), *SEED_INIT)
    invoke("run-once", str(cli_repo))
    code, _, err = invoke("show", str(cli_repo), "9")
    assert code == 2 and "no cycle 9" in err and "1 to 1" in err


def test_reset_asks_and_refuses_without_a_terminal(cli_repo: Path) -> None:
    invoke("init", str(cli_repo), *SEED_INIT)
    code, _, err = invoke("reset", str(cli_repo))
    assert code == 2 and "--yes" in err
    assert (cli_repo / ".autoresearch" / "config.json").exists()


def test_help_lists_commands_and_defaults() -> None:
    code, out, _ = invoke("--help")
    assert code == 0
    for command in ("init", "run-once", "run", "status", "results", "show", "reset", "quickstart"):
        assert command in out
    code, out, _ = invoke("init", "--help")
    assert "--metric-direction" in out and "lower" in out and "600" in out


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--debug", "status", str(tmp_path)])
    assert result.exit_code != 0
    assert result.exception is not None  # raised, not swallowed into one line


def test_quickstart_runs_offline(tmp_path: Path) -> None:
    target = tmp_path / "qs"
    code, out, err = invoke("quickstart", str(target), "--cycles", "3", "--quiet")
    assert code == 0, err
    assert (target / ".autoresearch" / "results.tsv").exists()
    assert len((target / ".autoresearch" / "runs.jsonl").read_text().splitlines()) == 3
    assert "baseline" in out
    code, _, err = invoke("quickstart", str(target))
    assert code == 2 and "not empty" in err, err


def _processes_in(repo: Path) -> list[psutil.Process]:
    """Live processes whose working directory is ``repo`` (the experiment's tree)."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.cwd() == str(repo) and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def _kill_orphans(repo: Path) -> None:
    for process in _processes_in(repo):
        process.kill()


def _in_experiment(state_path: Path, cycle: int) -> bool:
    """Whether state.json says cycle ``cycle``'s experiment is running."""
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        return False
    return state.get("currentCycle") == cycle and state.get("phase") == "execute"


def _wait_for(predicate: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached")


def test_ctrl_c_during_experiment_restores_and_records(cli_repo: Path) -> None:
    assert invoke("init", str(cli_repo), *SEED_INIT)[0] == 0
    env = {**os.environ, "SLOW_FROM": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoresearch", "run", str(cli_repo), "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    state_path = cli_repo / ".autoresearch" / "state.json"
    try:
        _wait_for(lambda: _in_experiment(state_path, cycle=2))
        time.sleep(0.5)
        experiment = _processes_in(cli_repo)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.1)
        proc.send_signal(signal.SIGINT)  # a second Ctrl-C is harmless
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    records = [
        json.loads(x) for x in (cli_repo / ".autoresearch" / "runs.jsonl").read_text().splitlines()
    ]
    assert [r["status"] for r in records] == ["keep", "crash"]
    assert "cancelled in execute" in records[1]["description"]
    assert git(cli_repo, "rev-parse", "HEAD") == records[0]["commit"]
    assert git(cli_repo, "status", "--porcelain") == ""
    assert (cli_repo / "train.py").read_text() == TRAIN
    state = json.loads(state_path.read_text())
    assert state["cycleCount"] == 2 and state["phase"] == "idle"
    assert experiment and not any(
        p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in experiment
    )


def run_until_cycle_2_runs(repo: Path) -> subprocess.Popen[bytes]:
    """Start `autoresearch run` in the background; return once cycle 2's experiment (slow) runs."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoresearch", "run", str(repo), "--quiet"],
        env={**os.environ, "SLOW_FROM": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(lambda: _in_experiment(repo / ".autoresearch" / "state.json", cycle=2))
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc


def test_kill_9_mid_experiment_then_the_next_run_recovers(cli_repo: Path) -> None:
    assert invoke("init", str(cli_repo), *SEED_INIT)[0] == 0
    proc = run_until_cycle_2_runs(cli_repo)
    state_path = cli_repo / ".autoresearch" / "state.json"
    try:
        time.sleep(0.3)
        proc.kill()
        proc.wait(timeout=30)
        assert _processes_in(cli_repo), "kill -9 of the engine leaves the experiment running"
        code, _, err = invoke("run-once", str(cli_repo))
        assert _processes_in(cli_repo) == [], "recovery kills the orphaned experiment"
    finally:
        if proc.poll() is None:
            proc.kill()
        _kill_orphans(cli_repo)
    assert code == 0, err
    records = [
        json.loads(x) for x in (cli_repo / ".autoresearch" / "runs.jsonl").read_text().splitlines()
    ]
    assert [r["cycle"] for r in records] == [1, 2, 3]
    assert records[1]["status"] == "crash" and records[1]["description"] == "interrupted in execute"
    state = json.loads(state_path.read_text())
    assert state["cycleCount"] == 3 and state["phase"] == "idle" and state["currentCycle"] is None
    assert len((cli_repo / ".autoresearch" / "results.tsv").read_text().splitlines()) == 4
    assert git(cli_repo, "status", "--porcelain") == ""
    assert git(cli_repo, "rev-parse", "HEAD") == state["bestCommit"]


def test_init_mentions_hooks_once(cli_repo: Path, tmp_path: Path) -> None:
    hook = cli_repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\nexit 1\n")  # a hook that would refuse every commit
    hook.chmod(0o755)
    code, out, _ = invoke("init", str(cli_repo), *SEED_INIT)
    assert code == 0
    assert "note: candidate commits do not run your git hooks (pre-commit)" in out
    code, out, err = invoke("run-once", str(cli_repo), "-q")
    assert code == 0 and "git hooks" not in out + err  # said once, at init
    plain = make_repo(tmp_path / "plain", {"train.py": TRAIN, "program.md": "p\n"})
    code, out, _ = invoke("init", str(plain), *SEED_INIT)
    assert code == 0 and "git hooks" not in out


def test_status_and_results_agree_on_a_crashed_baseline(cli_repo: Path) -> None:
    (cli_repo / "train.py").write_text(TRAIN + "raise SystemExit(1)\n")  # prints, then fails
    git(cli_repo, "commit", "-qam", "a failing run")
    assert invoke("init", str(cli_repo), *SEED_INIT)[0] == 0
    assert invoke("run-once", str(cli_repo), "-q")[0] == 0
    _, results_out, _ = invoke("results", str(cli_repo))
    _, status_out, _ = invoke("status", str(cli_repo))
    # The crashed baseline printed a number, but nothing was measured to compare with.
    assert "1 cycle, 0 kept; baseline - → best -" in results_out
    assert "- → -" in status_out
