"""The two research loops the overhead and scaling benchmarks compare, one cycle at a time.

- :class:`EngineLoop`: autoresearch itself, through the public SDK
  (``NeuroLink().create_research_worker(..., proposer=ScriptedProposer(...))``). The scripted
  proposer has no think time, so a cycle's wall time is the engine plus the command.
- :class:`ShellLoop`: what karpathy/autoresearch's program.md asks an agent to do per experiment,
  as a persistent bash process: edit the file with ``sed``, ``git commit``, run the command to
  ``run.log``, ``grep`` the metric, record the row in results.tsv, ``git reset --hard`` on
  discard. It times each cycle itself with ``$EPOCHREALTIME`` (no fork), so the time Python
  takes to talk to it is not counted against it.

Both see the same proposals in the same order: proposal ``i`` (0-based, after the baseline)
improves the metric when ``i`` is even and makes it worse when it is odd, so half the cycles are
kept and half discarded (reset) in both loops.
"""

from __future__ import annotations

import subprocess
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _common import METRIC, TRAIN_SH, bare_command_ms, git, git_env

from autoresearch import Edit, NeuroLink, ScriptedProposer, ScriptedStep

RUN_COMMAND = "sh train.sh"
"""The trivial experiment both loops run (a shell script that prints the metric)."""


def proposal_value(i: int) -> float:
    """The metric the ``i``-th proposal (0-based) produces: keeps improve, discards are worse."""
    if i % 2 == 0:
        return 1.0 - (i // 2 + 1) * 1e-5
    return 2.0


def expected_status(i: int) -> str:
    """What both loops should decide for the ``i``-th proposal."""
    return "keep" if i % 2 == 0 else "discard"


class EngineLoop:
    """One autoresearch worker on ``repo``, driven one cycle at a time."""

    def __init__(
        self, repo: Path, tag: str = "bench", first_proposal: int = 0, trace: bool = False
    ) -> None:
        self.repo = repo
        self.proposals = first_proposal
        """Index of the next proposal (continues a session that earlier workers started)."""
        self.trace: list[tuple[float, str, str | None]] = []
        """With ``trace``: (perf_counter, event type, phase) of every event of the last cycle."""

        def step(i: int) -> ScriptedStep:
            value = proposal_value(first_proposal + i)
            edit = Edit(path="train.sh", content=TRAIN_SH.format(value=value))
            return ScriptedStep(description=f"val_bpb {value:.6f}", edits=[edit])

        self.neurolink = NeuroLink()
        self.worker = self.neurolink.create_research_worker(
            repo_path=str(repo),
            mutable_paths=["train.sh"],
            immutable_paths=["program.md"],
            run_command=RUN_COMMAND,
            metric=METRIC,
            timeout_ms=60_000,
            tag=tag,
            proposer=ScriptedProposer(step),
        )
        if trace:  # one sync handler on "*": about a microsecond per event
            self.neurolink.get_event_emitter().on("*", self._record)

    def _record(self, event: Any) -> None:
        self.trace.append((time.perf_counter(), event.type, getattr(event, "phase", None)))

    def breakdown(self) -> dict[str, float]:
        """Where the last cycle's time went (ms), from its events' arrival times.

        ``inside``: the nine phases themselves (phase:enter to phase:exit); ``outside``: the
        rest of cycle:start to cycle:end (state.json written before each phase, the ledgers
        and state.json at the end, emitting events); plus one entry per phase.
        """
        times = {kind: t for t, kind, _ in self.trace if kind.startswith("autoresearch:cycle")}
        out: dict[str, float] = {}
        entered: float | None = None
        for t, kind, phase in self.trace:
            if kind == "autoresearch:phase:enter":
                entered = t
            elif kind == "autoresearch:phase:exit" and entered is not None and phase:
                out[phase] = (t - entered) * 1000
        total = (times["autoresearch:cycle:end"] - times["autoresearch:cycle:start"]) * 1000
        out["inside"] = sum(out.values())
        out["outside"] = total - out["inside"]
        return out

    def expected(self) -> str:
        """The status the next (non-baseline) cycle should end with."""
        return expected_status(self.proposals)

    async def prepare(self) -> float:
        """Open the repository and load the ledger (what the first cycle does first); ms."""
        start = time.perf_counter()
        await self.worker.prepare()
        return (time.perf_counter() - start) * 1000

    async def cycle(self) -> tuple[float, str, int]:
        """Run one cycle; return (wall ms around the SDK call, status, engine's duration_ms)."""
        self.trace.clear()
        start = time.perf_counter()
        result = await self.worker.run_experiment_cycle()
        wall = (time.perf_counter() - start) * 1000
        if not result.baseline:
            self.proposals += 1
        return wall, result.status, result.duration_ms

    async def close(self) -> None:
        await self.worker.aclose()
        await self.neurolink.aclose()


SHELL_LOOP = r"""
set -u
cd "$1"
best=""
while IFS=' ' read -r cmd value; do
  case "$cmd" in
    quit) exit 0 ;;
    bare)
      t0=$EPOCHREALTIME
      sh train.sh > bare.log 2>&1
      t1=$EPOCHREALTIME
      echo "$(( ${t1/./} - ${t0/./} )) bare"
      continue ;;
  esac
  t0=$EPOCHREALTIME
  if [ "$cmd" = cycle ]; then
    # 1. edit the code  2. commit
    sed -i "s/^echo \"val_bpb: [0-9.]*\"/echo \"val_bpb: $value\"/" train.sh
    git commit -q -am "try val_bpb $value"
  fi
  # 3. run the experiment, output to run.log  4. read the result
  sh train.sh > run.log 2>&1
  line=$(grep "^val_bpb:" run.log)
  commit=$(git rev-parse --short HEAD)
  metric=${line##* }
  if [ -z "$line" ]; then
    tail -n 50 run.log > /dev/null
    status=crash
  elif [ -z "$best" ] || (( 10#${metric/./} < 10#${best/./} )); then
    status=keep
  else
    status=discard
  fi
  # 5. keep (advance the branch) or go back to where we started
  if [ "$status" = keep ]; then
    best=$metric
  elif [ "$cmd" = cycle ]; then
    git reset -q --hard HEAD~1
  fi
  printf '%s\t%s\t0.0\t%s\t%s\n' "$commit" "${metric:-0.000000}" "$status" \
    "val_bpb $value" >> results.tsv
  t1=$EPOCHREALTIME
  echo "$(( ${t1/./} - ${t0/./} )) $status"
done
"""


class ShellLoop:
    """program.md's loop as a long-lived bash process, one cycle per request."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        git(repo, "checkout", "-q", "-b", "autoresearch/shell")
        git(repo, "config", "gc.auto", "0")  # no surprise gc pauses in the baseline
        exclude = repo / ".git" / "info" / "exclude"
        exclude.parent.mkdir(parents=True, exist_ok=True)
        with exclude.open("a") as handle:
            handle.write("run.log\nbare.log\nresults.tsv\n")
        (repo / "results.tsv").write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription\n")
        self._proc = subprocess.Popen(
            ["bash", "-c", SHELL_LOOP, "shell-loop", str(repo)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=git_env(),
            bufsize=1,
        )
        self._proposals = 0

    def _ask(self, line: str) -> tuple[float, str]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()
        answer = self._proc.stdout.readline().split()
        if len(answer) != 2:
            raise RuntimeError(f"the shell loop stopped (answer {answer!r})")
        return int(answer[0]) / 1000, answer[1]

    def baseline(self) -> tuple[float, str]:
        """Run the unmodified code once (the first experiment of a research session)."""
        return self._ask("baseline -")

    def expected(self) -> str:
        """The status the next cycle should end with."""
        return expected_status(self._proposals)

    def cycle(self) -> tuple[float, str]:
        """One experiment: (wall ms measured inside bash, status)."""
        value = proposal_value(self._proposals)
        self._proposals += 1
        return self._ask(f"cycle {value:.6f}")

    def bare(self) -> float:
        """The command alone, started by the same bash (ms)."""
        return self._ask("bare -")[0]

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.write("quit -\n")
            self._proc.stdin.flush()
            self._proc.wait(timeout=10)


Step = Callable[[bool], Awaitable[None]]
"""One measurement: called with ``record`` (False during warm-up), stores its own sample."""


async def interleaved(steps: list[Step], rounds: int, warmup: int) -> None:
    """Run every step once per round, rotating the order each round, after ``warmup`` rounds.

    Rotation spreads slow patches of a busy machine (and any order effect) evenly over the
    steps, so their medians can be compared.
    """
    for i in range(warmup + rounds):
        shift = i % len(steps)
        for step in steps[shift:] + steps[:shift]:
            await step(i >= warmup)


class Recorder:
    """Makes measurement steps and collects their samples (ms) by name."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.mismatches = 0
        """Cycles that ended with another status than the script intended (should be 0)."""

    def engine(self, name: str, loop: EngineLoop) -> Step:
        async def step(record: bool) -> None:
            want = loop.expected()
            wall, status, own = await loop.cycle()
            self.mismatches += status != want
            if record:
                self.samples[name].append(wall)
                self.samples[f"{name}.duration_ms"].append(own)
                if loop.trace:
                    for part, ms in loop.breakdown().items():
                        self.samples[f"{name}.{part}"].append(ms)

        return step

    def shell(self, name: str, loop: ShellLoop) -> Step:
        async def step(record: bool) -> None:
            want = loop.expected()
            wall, status = loop.cycle()
            self.mismatches += status != want
            if record:
                self.samples[name].append(wall)

        return step

    def bare(self, name: str, cwd: Path, log: Path) -> Step:
        """The command alone, started from Python the way the engine starts it."""

        async def step(record: bool) -> None:
            ms = bare_command_ms(RUN_COMMAND, cwd, log)
            if record:
                self.samples[name].append(ms)

        return step

    def bare_from_shell(self, name: str, loop: ShellLoop) -> Step:
        async def step(record: bool) -> None:
            ms = loop.bare()
            if record:
                self.samples[name].append(ms)

        return step
