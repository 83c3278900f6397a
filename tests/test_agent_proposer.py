"""The agent proposer with fake coding-agent scripts: real repos, real processes, real git."""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

from autoresearch import ConfigError, NeuroLink
from autoresearch.results import CycleResult
from tests.conftest import PY, TRAIN, Recorder, base_config, git, make_repo

pytestmark = pytest.mark.anyio

AGENT = textwrap.dedent(
    """\
    import json, os, pathlib, subprocess, sys, time
    mode = sys.argv[1]
    here = pathlib.Path.cwd()
    prompt = pathlib.Path(os.environ["AUTORESEARCH_PROMPT_FILE"]).read_text()
    trace = pathlib.Path(os.environ["AGENT_TRACE"])
    with trace.open("a") as out:
        out.write(json.dumps({"cwd": str(here), "workdir": os.environ["AUTORESEARCH_WORKDIR"],
                              "cycle": os.environ["AUTORESEARCH_CYCLE"],
                              "repair": "Your change was not used" in prompt,
                              "prompt": prompt}) + "\\n")
    train = here / "train.py"

    def lower():
        train.write_text(train.read_text().replace("X = 3.0", "X = 2.0"))

    def report(description):
        print(json.dumps({"description": description, "rationale": "closer to the optimum"}))

    if mode == "edit":
        print("Reading train.py... the loss is (X-1)^2+1.")
        lower()
        report("X 3.0 -> 2.0")
    elif mode == "immutable":
        lower()
        (here / "program.md").write_text("# Research program\\nAnything goes.\\n")
        report("also relaxed the program")
    elif mode == "nothing":
        print("I looked around and changed nothing.")
    elif mode == "hang":
        lower()
        time.sleep(600)
    elif mode == "child":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)",
                                  sys.argv[2]])
        with trace.open("a") as out:
            out.write(json.dumps({"child": child.pid}) + "\\n")
        lower()
        report("X 3.0 -> 2.0 (and a helper left running)")
    elif mode == "cost":
        lower()
        message = "Lowered X.\\n" + json.dumps({"description": "X to 2.0", "rationale": "r"})
        print(json.dumps({"type": "result", "subtype": "success", "result": message,
                          "total_cost_usd": 0.0123,
                          "usage": {"input_tokens": 100, "output_tokens": 20,
                                    "cache_read_input_tokens": 50}}))
    elif mode == "outside":
        lower()
        (here / "README.md").write_text("rewritten by the agent\\n")
        (here / "notes.txt").write_text("my scratch notes\\n")
        report("X 3.0 -> 2.0")
    elif mode == "commit":
        lower()
        subprocess.run(["git", "commit", "-qam", "agent commit"], check=True)
        report("X 3.0 -> 2.0, committed by the agent")
    elif mode == "repair":
        if "Your change was not used" in prompt:
            train.write_text(train.read_text().replace("X = (", "X = 2.0"))
            report("X 3.0 -> 2.0, fixed")
        else:
            train.write_text(train.read_text().replace("X = 3.0", "X = ("))
            report("X 3.0 -> (")
    elif mode == "fail":
        lower()
        print("error: the model is overloaded", file=sys.stderr)
        sys.exit(3)
    """
)


class Agent:
    """A fake coding agent: one script, a mode per test, a trace of every run."""

    def __init__(self, tmp: Path) -> None:
        self.script = tmp / "agent.py"
        self.script.write_text(AGENT)
        self.trace = tmp / "trace.jsonl"
        self.token = f"fake-agent-{uuid.uuid4().hex}"

    def command(self, mode: str) -> str:
        return f"AGENT_TRACE={self.trace} {PY} {self.script} {mode} {self.token}"

    def runs(self) -> list[dict[str, Any]]:
        if not self.trace.exists():
            return []
        return [json.loads(line) for line in self.trace.read_text().splitlines()]

    def alive(self) -> list[psutil.Process]:
        """Processes still running that this agent started (their command line has the token)."""
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            try:
                if any(self.token in part for part in proc.info["cmdline"] or []):
                    found.append(proc)
            except psutil.Error:
                continue
        return found


@pytest.fixture
def agent(tmp_path: Path) -> Agent:
    return Agent(tmp_path)


def worker_for(repo: Path, agent: Agent, mode: str, recorder: Recorder | None = None, **kw: Any):
    neurolink = NeuroLink()
    if recorder is not None:
        neurolink.get_event_emitter().on("*", recorder)
    options = {"agentTimeoutMs": 20_000, **kw}
    return neurolink.create_research_worker(
        base_config(repo, **options), proposer="agent", agent_command=agent.command(mode)
    )


async def two_cycles(repo: Path, agent: Agent, mode: str, **kw: Any) -> CycleResult:
    results = await worker_for(repo, agent, mode, **kw).run(max_cycles=2)
    assert results[0].baseline
    return results[1]


def clean(repo: Path) -> None:
    """The checkout is exactly HEAD: nothing the agent wrote is left in it."""
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


async def test_an_edit_to_a_mutable_file_is_the_change(repo: Path, agent: Agent) -> None:
    result = await two_cycles(repo, agent, "edit")
    assert (result.status, result.description, result.metric_value) == (
        "keep",
        "X 3.0 -> 2.0",
        2.0,
    )
    assert "X = 2.0" in (repo / "train.py").read_text()
    message = git(repo, "log", "-1", "--format=%B")
    assert message.startswith("autoresearch t1 #2: X 3.0 -> 2.0\n\ncloser to the optimum")
    [run] = agent.runs()
    assert run["cwd"] == run["workdir"] == str(repo) and run["cycle"] == "2"
    prompt = run["prompt"]
    for said in (
        "Change only these paths: train.py",
        "Never change program.md",
        "val_bpb",
        "Make val_bpb lower.",
        "#1 | keep | 5 | +0 | baseline",
        '{"description"',
    ):
        assert said in prompt
    logs = repo / ".autoresearch" / "logs"
    assert "Reading train.py" in (logs / "2.agent.log").read_text()
    assert (logs / "2.agent.prompt.md").read_text() == prompt
    record = json.loads((repo / ".autoresearch" / "runs.jsonl").read_text().splitlines()[-1])
    assert record["proposal"] == {"agent": Path(PY).name, "calls": 1}
    clean(repo)


async def test_an_edit_to_an_immutable_file_makes_the_cycle_invalid(
    repo: Path, agent: Agent
) -> None:
    result = await two_cycles(repo, agent, "immutable")
    assert result.status == "invalid"
    assert "the agent changed program.md, which must not change" in result.description
    assert (repo / "program.md").read_text() == "# Research program\nMake val_bpb lower.\n"
    assert "X = 3.0" in (repo / "train.py").read_text()
    ref = result.description.split("saved as ")[1].rstrip(")")
    assert git(repo, "show", f"{ref}:program.md") == "# Research program\nAnything goes."
    assert "X = 2.0" in git(repo, "show", f"{ref}:train.py")
    assert git(repo, "rev-list", "--count", "HEAD") == "1"  # nothing committed
    clean(repo)


async def test_an_agent_that_changes_nothing_is_an_invalid_cycle(repo: Path, agent: Agent) -> None:
    result = await two_cycles(repo, agent, "nothing")
    assert result.status == "invalid"
    assert result.description == (
        "the proposer failed: the agent changed none of the mutable paths (train.py)"
    )
    clean(repo)


async def test_an_agent_past_its_limit_is_killed_and_undone(repo: Path, agent: Agent) -> None:
    result = await two_cycles(repo, agent, "hang", agentTimeoutMs=1500, killGraceMs=500)
    assert result.status == "invalid"
    assert "the agent did not finish within 1.5 s and was stopped" in result.description
    assert "X = 3.0" in (repo / "train.py").read_text()
    ref = result.description.split("saved as ")[1].rstrip(")")
    assert "X = 2.0" in git(repo, "show", f"{ref}:train.py")
    assert agent.alive() == []
    clean(repo)


async def test_a_process_the_agent_leaves_behind_is_killed(repo: Path, agent: Agent) -> None:
    result = await two_cycles(repo, agent, "child")
    assert result.status == "keep"
    child = next(run["child"] for run in agent.runs() if "child" in run)
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == "zombie"
    assert agent.alive() == []


async def test_a_reported_cost_and_token_counts_are_recorded(repo: Path, agent: Agent) -> None:
    result = await two_cycles(repo, agent, "cost")
    assert (result.status, result.description) == ("keep", "X to 2.0")
    assert result.usage is not None
    assert result.usage.cost_usd == pytest.approx(0.0123)
    assert (result.usage.input_tokens, result.usage.output_tokens) == (150, 20)
    assert result.usage.cache_read_tokens == 50
    record = json.loads((repo / ".autoresearch" / "runs.jsonl").read_text().splitlines()[-1])
    assert record["usage"]["costUsd"] == pytest.approx(0.0123)


async def test_a_failing_agent_is_an_invalid_cycle_with_its_last_words(
    repo: Path, agent: Agent
) -> None:
    result = await two_cycles(repo, agent, "fail")
    assert result.status == "invalid"
    assert "the agent exited with code 3: error: the model is overloaded" in result.description
    clean(repo)


async def test_changes_outside_the_mutable_paths_are_restored_saved_and_reported(
    tmp_path: Path, agent: Agent, recorder: Recorder
) -> None:
    repo = make_repo(
        tmp_path / "readme-repo",
        {"train.py": TRAIN, "program.md": "# Program\n", "README.md": "the user's readme\n"},
    )
    (repo / "scratch.txt").write_text("the user's untracked notes\n")
    worker = worker_for(repo, agent, "outside", recorder)
    result = (await worker.run(max_cycles=2))[1]
    assert result.status == "keep"
    assert result.description.startswith("X 3.0 -> 2.0 (the agent also changed README.md, ")
    assert (repo / "README.md").read_text() == "the user's readme\n"
    assert not (repo / "notes.txt").exists()
    assert (repo / "scratch.txt").read_text() == "the user's untracked notes\n"
    [notice] = [e for e in recorder.of("notice") if e.kind == "proposer"]
    ref = notice.message.split("saved as ")[1].split(")")[0]
    assert git(repo, "show", f"{ref}:README.md") == "rewritten by the agent"
    assert git(repo, "show", f"{ref}:notes.txt") == "my scratch notes"
    assert (
        git(repo, "diff", "HEAD~1", "HEAD", "--stat").splitlines()[0].strip().startswith("train.py")
    )


async def test_an_agent_commit_is_undone_and_its_change_taken(repo: Path, agent: Agent) -> None:
    result = await two_cycles(repo, agent, "commit")
    assert result.status == "keep"
    assert "HEAD and the index were put back" in result.description
    subjects = git(repo, "log", "--format=%s").splitlines()
    assert subjects == ["autoresearch t1 #2: X 3.0 -> 2.0, committed by the agent", "initial"]
    clean(repo)


async def test_a_change_that_does_not_validate_goes_back_to_the_agent(
    repo: Path, agent: Agent
) -> None:
    result = await two_cycles(repo, agent, "repair")
    assert (result.status, result.metric_value) == ("keep", 2.0)
    assert [run["repair"] for run in agent.runs()] == [False, True]
    repair_prompt = agent.runs()[1]["prompt"]
    assert "train.py:2: syntax error" in repair_prompt
    assert "Your previous change is in the files again" in repair_prompt
    assert result.usage is not None and result.usage.calls == 2


async def test_with_slots_the_agent_works_in_the_slot_checkout(repo: Path, agent: Agent) -> None:
    results = await worker_for(repo, agent, "edit", slots=2).run(max_cycles=2)
    assert [r.status for r in results] == ["keep", "keep"]
    [run] = agent.runs()
    slot = repo / ".autoresearch" / "worktrees"
    assert Path(run["cwd"]).parent == slot and run["workdir"] == run["cwd"]
    assert "X = 2.0" in (repo / "train.py").read_text()
    clean(repo)


async def test_cancelling_during_the_agent_kills_it_and_restores_the_tree(
    repo: Path, agent: Agent
) -> None:
    worker = worker_for(repo, agent, "hang")
    await worker.run_experiment_cycle()  # the baseline
    with anyio.move_on_after(3):
        await worker.run_experiment_cycle()
    await worker.aclose()
    assert agent.alive() == []
    assert "X = 3.0" in (repo / "train.py").read_text()
    assert worker.history[-1].status == "crash"
    assert worker.history[-1].description.startswith("cancelled in plan")
    clean(repo)


def test_the_agent_proposer_needs_a_command(repo: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        NeuroLink().create_research_worker(base_config(repo, proposer="agent"))
    assert caught.value.field == "agent_command"
    assert "--agent-command" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        NeuroLink().create_research_worker(
            base_config(repo, proposer="local", agentCommand="claude -p hi")
        )
    assert "only the agent proposer runs a command" in str(caught.value)
    assert not (repo / ".autoresearch").exists()


def test_the_cli_sets_up_and_runs_an_agent(repo: Path, agent: Agent) -> None:
    from typer.testing import CliRunner

    from autoresearch.cli import app

    runner = CliRunner()
    init = runner.invoke(
        app,
        [
            "init", str(repo), "--target", "train.py", "--immutable", "program.md",
            "--run-command", f"{PY} train.py", "--metric-name", "val_bpb", "--tag", "cli",
            "--agent-command", agent.command("edit"), "--agent-timeout", "30",
        ],
    )  # fmt: skip
    assert init.exit_code == 0, init.output
    assert "proposer agent." in init.output
    saved = json.loads((repo / ".autoresearch" / "config.json").read_text())
    assert (saved["agentCommand"], saved["agentTimeoutMs"]) == (agent.command("edit"), 30_000)
    for _ in range(2):
        step = runner.invoke(app, ["run-once", str(repo)])
        assert step.exit_code == 0, step.output
    assert "keep" in step.output and "X 3.0 -> 2.0" in step.output
    bad = runner.invoke(
        app,
        [
            "init", str(repo), "--force", "--target", "train.py", "--run-command", "x",
            "--metric-name", "m", "--proposer", "agent",
        ],
    )  # fmt: skip
    assert bad.exit_code == 2
    assert "agent_command: the agent proposer needs the command" in bad.output


def test_reports_of_the_common_agent_clis_are_read() -> None:
    from autoresearch.proposers.agent_report import read_report

    final = '{"description": "cosine schedule", "rationale": "smoother decay"}'
    gemini = json.dumps(
        {
            "response": f"Done.\n{final}",
            "stats": {"models": {"gemini-2.5-pro": {"tokens": {"prompt": 900, "candidates": 40,
                                                                "thoughts": 10, "cached": 300}}}},
        }
    )  # fmt: skip
    report = read_report(f"some progress\n{gemini}\n")
    assert (report.description, report.rationale) == ("cosine schedule", "smoother decay")
    assert (report.usage.input_tokens, report.usage.output_tokens) == (900, 50)
    assert report.usage.cache_read_tokens == 300
    codex = "\n".join(
        json.dumps(event)
        for event in (
            {"type": "item.completed", "item": {"type": "agent_message", "text": "Lowered LR."}},
            {"type": "turn.completed", "usage": {"input_tokens": 1200, "cached_input_tokens": 800,
                                                 "output_tokens": 90}},
        )
    )  # fmt: skip
    report = read_report(codex)
    assert report.description == "Lowered LR."
    assert (report.usage.input_tokens, report.usage.cache_read_tokens) == (1200, 800)
    plain = read_report("I doubled the learning rate.\n")
    assert plain.description == "I doubled the learning rate."
    assert plain.usage.calls == 1 and plain.usage.cost_usd == 0
    assert read_report("").description is None


async def test_a_task_budget_in_dollars_counts_the_cost_the_agent_reports(
    repo: Path, agent: Agent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from autoresearch.tasks import TaskManager

    monkeypatch.setenv("AUTORESEARCH_HOME", str(tmp_path / "ar-home"))
    config = base_config(repo, agentCommand=agent.command("cost"), agentTimeoutMs=20_000)
    manager = TaskManager(neurolink=NeuroLink())
    await manager.save(
        {"id": "agent", "type": "autoresearch", "autoresearch": config, "budget": {"maxUsd": 0.02}}
    )
    await manager.start_worker(poll_interval=0.05, lease_seconds=2.0, stop_when_idle=True)
    info = await manager.get("agent")
    # baseline $0, then $0.0123 a cycle (the second agent run finds nothing to lower: invalid,
    # but it was paid for): $0.0246 >= $0.02 after three cycles
    assert (info.status, info.cycles) == ("budget-exhausted", 3)
    assert [c.cost_usd for c in await manager.cycles("agent")] == pytest.approx([0, 0.0123, 0.0123])
