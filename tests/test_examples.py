"""Every example in examples/ runs, offline, on a scratch repository in tmp_path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import pytest

from autoresearch import parse_event
from autoresearch.cli.quickstart import create_quickstart

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The examples' environment: offline, with temporary directories inside tmp_path."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AUTORESEARCH_") or k == "AUTORESEARCH_HOME"
    }
    return {**clean, "TMPDIR": str(scratch), "AUTORESEARCH_HOME": str(tmp_path / "home")}


@pytest.fixture
def quickstart_copy(tmp_path: Path) -> Path:
    return anyio.run(create_quickstart, tmp_path / "qs")


def run(script: str, *args: str, env: dict[str, str], timeout: float = 120) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    return proc.stdout


def test_sdk_single_cycle_baseline_then_a_change(
    quickstart_copy: Path, env: dict[str, str]
) -> None:
    out = run("sdk_single_cycle.py", str(quickstart_copy), env=env)
    assert out.splitlines()[:2] == ["Cycle 1 starting", "Cycle 1: keep, metric=3.578042"]
    assert "Status: keep\nMetric: 3.578042\nCommit: " in out
    out = run("sdk_single_cycle.py", env={**env, "AUTORESEARCH_EXAMPLE_REPO": str(quickstart_copy)})
    assert out.startswith("Cycle 2 starting\nCycle 2: ")
    lines = (quickstart_copy / ".autoresearch" / "runs.jsonl").read_text().splitlines()
    assert [json.loads(line)["cycle"] for line in lines] == [1, 2]


def test_sdk_single_cycle_makes_its_own_scratch_repo(env: dict[str, str]) -> None:
    out = run("sdk_single_cycle.py", env=env)
    first = out.splitlines()[0]
    assert first.startswith("(a scratch copy of the quickstart example: ")
    assert first.removeprefix("(a scratch copy of the quickstart example: ").startswith(
        env["TMPDIR"]
    )
    assert "Status: keep" in out


def _frames(text: str) -> list[tuple[str, dict[str, object]]]:
    frames = []
    for block in text.split("\n\n"):
        lines = [line for line in block.splitlines() if not line.startswith(":")]
        if not lines:
            continue
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), block
        frames.append((lines[0].removeprefix("event: "), json.loads(lines[1][6:])))
    return frames


def test_event_stream_prints_sse_frames(quickstart_copy: Path, env: dict[str, str]) -> None:
    frames = _frames(run("event_stream.py", str(quickstart_copy), "--cycles", "2", env=env))
    names = [name for name, _ in frames]
    assert names[0] == "autoresearch:cycle:start"
    assert names[-1] == "autoresearch:stopped"
    assert names.count("autoresearch:cycle:end") == 2
    assert {"autoresearch:phase:enter", "autoresearch:commit:created"} <= set(names)
    for name, data in frames:
        assert parse_event(data).type == name  # each frame is a whole event, in camelCase
    end = [data for name, data in frames if name == "autoresearch:cycle:end"]
    assert end[0]["status"] == "keep" and end[0]["metricValue"] == pytest.approx(3.578042)
    assert frames[-1][1]["reason"] == "max-runs"


def test_event_stream_serves_a_browser(quickstart_copy: Path, env: dict[str, str]) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLES / "event_stream.py"),
            str(quickstart_copy),
            "--cycles",
            "2",
            "--serve",
            "--port",
            "0",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving on http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split()[2]
        page = httpx.get(url, timeout=10)
        assert page.status_code == 200 and 'new EventSource("/events")' in page.text
        with httpx.stream("GET", url + "events", timeout=60) as response:
            assert response.headers["content-type"] == "text/event-stream"
            text = "".join(response.iter_text())
        frames = _frames(text)
        assert frames[0][0] == "autoresearch:cycle:start"
        assert frames[-1][0] == "autoresearch:stopped"
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_higher_is_better_keeps_only_higher_accuracy(tmp_path: Path, env: dict[str, str]) -> None:
    repo = tmp_path / "classifier"
    out = run("higher_is_better/research.py", str(repo), "--cycles", "8", env=env)
    assert out.splitlines()[-1] == "baseline 0.75 -> best 0.915 (4 kept)"
    config = json.loads((repo / ".autoresearch" / "config.json").read_text())
    assert config["metric"]["direction"] == "higher"
    records = [
        json.loads(line)
        for line in (repo / ".autoresearch" / "runs.jsonl").read_text().splitlines()
    ]
    best = records[0]["metric"]
    for record in records[1:]:
        if record["status"] == "keep":
            assert record["metric"] > best  # kept only when the accuracy went up
            best = record["metric"]
        elif record["status"] == "discard":
            assert record["metric"] <= best
    kept = [r for r in records if r["status"] == "keep"][-1]  # the files are the best commit's
    shown = subprocess.run(
        ["git", "show", f"{kept['commit']}:train.py"], cwd=repo, capture_output=True, text=True
    )
    assert (repo / "train.py").read_text() == shown.stdout


def test_scheduled_task_saves_then_the_worker_runs_it(
    quickstart_copy: Path, env: dict[str, str]
) -> None:
    out = run("scheduled_task.py", str(quickstart_copy), "--cycles", "3", env=env)
    lines = out.splitlines()
    assert lines[0] == "cycle 1: keep, metric=3.578042  baseline"
    assert [line.split(":")[0] for line in lines[:3]] == ["cycle 1", "cycle 2", "cycle 3"]
    assert lines[-1] == "task research-lr-schedule: completed, 3 cycles"
    assert (Path(env["AUTORESEARCH_HOME"]) / "tasks.db").is_file()
    runs = (quickstart_copy / ".autoresearch" / "runs.jsonl").read_text().splitlines()
    assert len(runs) == 3
    # Saving the same task again changes nothing: it is complete, so the worker has no work.
    out = run("scheduled_task.py", str(quickstart_copy), "--cycles", "3", env=env)
    assert out.splitlines() == ["task research-lr-schedule: completed, 3 cycles"]
