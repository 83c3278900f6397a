"""The agent proposer: a coding-agent CLI (Claude Code, Codex, Gemini CLI, Aider…) makes the change.

Each cycle, ``plan`` writes the prompt (:mod:`autoresearch.proposers.agent_prompt`) to
``.autoresearch/logs/<cycle>.agent.prompt.md`` and runs the configured shell command in the
cycle's checkout (the repository, or with parallel slots the slot's own worktree) with
``AUTORESEARCH_PROMPT_FILE`` naming that file. The command runs like an experiment
(:func:`~autoresearch.runner.run_experiment`): in its own session, with stdin closed, its
output in ``.autoresearch/logs/<cycle>.agent.log``, killed with its whole process tree at the
time limit or when the cycle is cancelled, and nothing it started outlives it.

The agent edits the files in place. When it is done, a :class:`TreeGuard` takes its edits to
the mutable paths as the change and puts the checkout back as it was, saving and reporting
whatever else it changed (:mod:`autoresearch.proposers.agent_tree`). ``implement`` then hands
those edits to the engine, which applies, validates, commits, runs and judges them like any
other proposer's, so every rule about the user's files holds unchanged. A failed repair round
runs the agent again with the problem, its previous change back in the files.

The cycle ends ``invalid`` (a :class:`ProposerError`) when the agent could not start, exited
with a non-zero status, ran past its time limit, changed an immutable path (the evaluator must
stay as it is), or changed none of the mutable paths. The description and rationale come from
the agent's report (:mod:`autoresearch.proposers.agent_report`), else from the diff.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from autoresearch.edits import ChangeSet, Edit, PathPolicy, apply_changes
from autoresearch.errors import EditError, ProposerError
from autoresearch.proposers.agent_prompt import agent_prompt, repair_section
from autoresearch.proposers.agent_report import AgentReport, read_report
from autoresearch.proposers.agent_tree import TreeGuard, Undone
from autoresearch.proposers.base import Analysis, Plan, ResearchContext
from autoresearch.results import RunRecord
from autoresearch.runner import RunOutcome, run_experiment
from autoresearch.workspace import Workspace

__all__ = ["AgentProposer"]

CLEANUP_TIMEOUT_S = 30.0
"""How long putting the checkout back may take after a cancellation."""


@dataclass
class _Turn:
    """What one cycle's plan left for implement and repair."""

    plan: Plan
    prompt: str
    cycle: int
    edits: list[Edit]
    repairs: int = 0


@dataclass(frozen=True)
class _Run:
    """One run of the agent: how it ended, what it said, what it changed."""

    outcome: RunOutcome
    report: AgentReport
    undone: Undone


class AgentProposer:
    """Proposes changes by running a coding agent's CLI in the cycle's checkout.

    ``command`` is a shell command line (run with ``/bin/sh -c``) that reads its task from the
    file named by ``AUTORESEARCH_PROMPT_FILE``, for example
    ``claude -p "$(cat "$AUTORESEARCH_PROMPT_FILE")" --permission-mode acceptEdits``.
    ``timeout_s`` bounds one run; ``kill_grace_s`` is the time between SIGTERM and SIGKILL;
    ``env`` is added to the environment the command inherits.
    """

    name = "agent"

    def __init__(
        self,
        command: str,
        *,
        timeout_s: float = 1800.0,
        kill_grace_s: float = 5.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if not command.strip():
            raise ValueError("the agent command is empty")
        if timeout_s <= 0 or kill_grace_s < 0:
            raise ValueError(f"bad limits: timeout_s={timeout_s}, kill_grace_s={kill_grace_s}")
        self.command = command
        self.timeout_s = timeout_s
        self.kill_grace_s = kill_grace_s
        self.env = dict(env or {})
        self._turn: _Turn | None = None

    async def prime(self, history: Sequence[RunRecord]) -> None:
        """Nothing to learn up front: the prompt shows the recent results every cycle."""
        self._turn = None

    async def observe(self, record: RunRecord) -> None:
        """Forget the finished cycle."""
        self._turn = None

    async def plan(self, context: ResearchContext, analysis: Analysis, hint: str | None) -> Plan:
        """Run the agent; its edits to the mutable paths are the plan's change."""
        root = context.workdir or context.config.repo_path
        prompt = agent_prompt(context, analysis, hint, root)
        run = await self._run(context, analysis.cycle, "agent", prompt)
        self._check(run, context)
        edits = run.undone.edits
        report = run.report
        description = report.description or f"the agent's change to {_files(edits)}"
        metadata: dict[str, Any] = {"agent": _program(self.command), "calls": 1}
        if run.undone.restored:
            metadata["restored"] = run.undone.restored
        if run.undone.saved:
            metadata["saved"] = run.undone.saved
        plan = Plan(
            description=description,
            rationale=report.rationale,
            metadata=metadata,
            usage=report.usage,
            notes=run.undone.notes(),
        )
        self._turn = _Turn(plan=plan, prompt=prompt, cycle=analysis.cycle, edits=edits)
        return plan

    async def implement(self, context: ResearchContext, plan: Plan) -> ChangeSet:
        """The edits the agent made during ``plan`` (no second run)."""
        turn = self._turn
        if turn is None or turn.plan is not plan:
            raise ProposerError("the agent proposer implements only the plan it just made")
        return ChangeSet(edits=turn.edits)

    async def repair(
        self, context: ResearchContext, plan: Plan, changes: ChangeSet, problem: str
    ) -> ChangeSet | None:
        """Run the agent again with the problem and its previous change back in the files.

        A run that fails or changes nothing gives up (an empty change set carrying its usage).
        """
        turn = self._turn
        if turn is None or turn.plan is not plan:
            return None

        async def with_previous_change(policy: PathPolicy) -> str:
            try:
                await apply_changes(policy, changes)
            except EditError:  # it cannot be applied: the agent starts from the parent
                return turn.prompt + repair_section(problem, restored=False)
            return turn.prompt + repair_section(problem, restored=True)

        turn.repairs += 1
        label = "agent-repair" + (str(turn.repairs) if turn.repairs > 1 else "")
        run = await self._run(context, turn.cycle, label, with_previous_change)
        if isinstance(plan.metadata.get("calls"), int):
            plan.metadata["calls"] += 1
        try:
            self._check(run, context)
        except ProposerError:
            return ChangeSet(edits=[], usage=run.report.usage)
        return ChangeSet(edits=run.undone.edits, usage=run.report.usage)

    async def _run(
        self,
        context: ResearchContext,
        cycle: int,
        label: str,
        prompt: str | Callable[[PathPolicy], Awaitable[str]],
    ) -> _Run:
        """Run the command once in the cycle's checkout and put the checkout back.

        ``prompt`` may be a coroutine function that first prepares the files (given the path
        policy) and returns the prompt; what it writes counts as the agent's.
        """
        config = context.config
        root = context.workdir or config.repo_path
        logs = Workspace(config.repo_path).logs_dir
        prompt_path = logs / f"{cycle}.{label}.prompt.md"
        guard = await TreeGuard.open(root, config, cycle)
        await guard.start()
        outcome: RunOutcome | None = None
        undone: Undone | None = None
        try:
            text = prompt if isinstance(prompt, str) else await prompt(guard.policy)
            await anyio.to_thread.run_sync(_write, prompt_path, text)
            outcome = await run_experiment(
                self.command,
                cwd=root,
                log_path=logs / f"{cycle}.{label}.log",
                timeout_s=self.timeout_s,
                kill_grace_s=self.kill_grace_s,
                env={
                    **self.env,
                    "AUTORESEARCH_PROMPT_FILE": str(prompt_path),
                    "AUTORESEARCH_CYCLE": str(cycle),
                    "AUTORESEARCH_TAG": config.chosen_tag,
                    "AUTORESEARCH_WORKDIR": str(root),
                },
            )
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLEANUP_TIMEOUT_S):
                undone = await guard.finish(take=outcome is not None and _succeeded(outcome))
        if undone is None or outcome is None:
            raise ProposerError("the checkout could not be put back in time after the agent")
        return _Run(outcome, read_report(outcome.tail), undone)

    def _check(self, run: _Run, context: ResearchContext) -> None:
        """Raise :class:`ProposerError` (with the run's usage) unless the run made a change."""
        outcome, undone = run.outcome, run.undone
        problem = None
        if outcome.error:
            problem = f"the agent command could not run: {outcome.error}"
        elif outcome.timed_out:
            problem = f"the agent did not finish within {self.timeout_s:g} s and was stopped"
        elif outcome.exit_code != 0:
            last = next((ln for ln in reversed(outcome.tail.splitlines()) if ln.strip()), "")
            problem = f"the agent exited with code {outcome.exit_code}" + (
                f": {last.strip()[:200]}" if last else ""
            )
        elif undone.immutable:
            problem = (
                f"the agent changed {', '.join(undone.immutable)}, which must not change "
                "(immutable: the experiment and its measurement stay as they are); restored"
            )
        elif not undone.edits:
            paths = ", ".join(context.config.mutable_paths)
            problem = f"the agent changed none of the mutable paths ({paths})"
            if undone.restored:
                problem += f"; what it changed elsewhere was restored: {', '.join(undone.restored)}"
        if problem is None:
            return
        if undone.saved:
            problem += f" (what it wrote is saved as {undone.saved})"
        raise ProposerError(problem, usage=run.report.usage)


def _succeeded(outcome: RunOutcome) -> bool:
    return outcome.error is None and not outcome.timed_out and outcome.exit_code == 0


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _program(command: str) -> str:
    """The program a command line runs (for the record): no variables, path or arguments."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    words = [w for w in words if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", w)]
    return words[0].rsplit("/", 1)[-1] if words else command


def _files(edits: Sequence[Edit]) -> str:
    names = [edit.path for edit in edits]
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
