"""8. Parallel slots: experiments per hour with 1, 2 and 4 slots on a sleep-bound experiment.

Three identical repositories, one per slot count, each researched by its own worker through the
public SDK (``NeuroLink().create_research_worker({..., "slots": N},
proposer=ScriptedProposer(step))``). The experiment, ``sh train.sh``, sleeps (1 s; ``--nap``)
and then prints a metric computed from five independent numeric knobs written on lines far
apart (so changes to different knobs merge cleanly when a stale winner is replayed). The
machine's two cores are therefore not what limits the rate: N slots can in principle run N
experiments per second of sleep.

The proposals are the same for every slot count: a ScriptedProposer whose step ``i`` sets knob
``i mod 5`` (in the file of the best commit of that moment) to a value never used before, so
every proposal is a valid, non-empty change. One step in three moves its knob closer to the
optimum (a keep when measured on the current best), the others move it far away (a discard).
The scripted proposer has no think time, so what holds slots back is the engine alone. (The
offline local proposer was not used: its next proposal depends on what it has seen and on what
is in flight, so 1, 2 and 4 slots would not run the same proposals.)

Each worker first runs its baseline and one cycle per slot (which makes the slots' worktrees),
then one warm-up round. In each measured round every slot count runs ``worker.run(
max_cycles=K)`` once (K = 16; ``--quick`` 8), the order of the three rotating round by round,
and its rate is K experiments over the wall time of that call. The ratio of a round is
``rate_N / (N x rate_1)`` with rate_1 from the same round. Replays (a candidate that beat its
parent after the best had moved on, measured again on the new best) are experiments too: they
run the command.

For information: where the slots' time goes, from the arrival times of each cycle's events
(``source.slot`` says which slot): the stretch from cycle:start to the first phase (the slot's
checkout and the wait for the proposal lock), proposing, validate + commit, the run, evaluate,
the stretch up to decide (the wait for the decision lock and the verdict) and deciding +
recording, plus the time a slot sat free between cycles. Events cannot tell the checkout from
the lock wait, so the two locks are also wrapped with a timer (private attributes of the
worker; skipped if they are not there). An engine error (``worker.run`` raises) is printed,
kept in the JSON and the round is run again (at most three times).

Target: rate_N >= 0.95 x N x rate_1 (median over rounds) for N = 2 and 4.
"""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import anyio
from _common import (
    METRIC,
    make_repo,
    parser,
    percentile,
    ratio,
    summary,
    table,
    temp_dir,
    verdict,
    write_results,
)

from autoresearch import Edit, NeuroLink, ScriptedProposer, ScriptedStep
from autoresearch.events import current_event_source

TARGET = 0.95
SLOT_COUNTS = (1, 2, 4)
KNOBS = 5
RUN_COMMAND = "sh train.sh"
ATTEMPTS = 3
"""How many times a round is tried when the engine raises (each failure is reported)."""

TRAIN_SH = """\
# A sleep-bound experiment: {knobs} independent knobs, far apart so that changes merge cleanly.
{assignments}
sleep {nap}
awk {awk_vars} 'BEGIN {{ printf "val_bpb: %.6f\\n", {formula} + 1 }}'
"""


def train_sh(nap: float) -> str:
    names = [f"K{k + 1}" for k in range(KNOBS)]
    return TRAIN_SH.format(
        knobs=KNOBS,
        assignments="\n\n\n".join(f"{name}=3.0" for name in names),
        nap=nap,
        awk_vars=" ".join(f'-v {name.lower()}="${name}"' for name in names),
        formula=" + ".join(f"({name.lower()} - 1) ^ 2" for name in names),
    )


def step(i: int) -> ScriptedStep:
    """Proposal ``i``: one knob to a value it never had; one in three moves it closer to 1."""
    name = f"K{i % KNOBS + 1}"
    # Each knob gets every 15th step closer to the optimum; the other steps are far off.
    closer = 1.0 + 2.0 * 0.8 ** (i // (3 * KNOBS) + 1)
    value = closer if i % 3 == 0 else 5.0 + i * 1e-3

    def edits(context: Any) -> list[Edit]:
        text = context.mutable_files["train.sh"]
        new = re.sub(rf"^{name}=.*$", f"{name}={value:.6f}", text, flags=re.M)
        return [Edit(path="train.sh", content=new)]

    return ScriptedStep(f"{name} -> {value:.6f}", edits)


# -- timing the two locks (for information) ------------------------------------------------


class TimedLock:
    """Wraps the worker's anyio.Lock; records (slot, requested, acquired, released)."""

    def __init__(self, inner: Any, log: list[list[float]]) -> None:
        self._inner = inner
        self._log = log
        self._holding: list[float] | None = None

    async def __aenter__(self) -> None:
        source = current_event_source()
        requested = time.perf_counter()
        await self._inner.acquire()
        slot = float(source.slot) if source is not None and source.slot else 0.0
        self._holding = [slot, requested, time.perf_counter(), float("nan")]

    async def __aexit__(self, *exc: object) -> None:
        assert self._holding is not None
        self._holding[3] = time.perf_counter()
        self._log.append(self._holding)
        self._holding = None
        self._inner.release()


# -- one slot count ------------------------------------------------------------------------


Trace = list[tuple[float, str, str | None, int | None, int | None]]
"""(arrival perf_counter, event type, phase, cycle, slot) of every event of a round."""


class Side:
    """One repository and its worker with ``slots`` slots, run K cycles at a time."""

    def __init__(self, root: Path, slots: int, nap: float) -> None:
        self.slots = slots
        self.repo = make_repo(
            root / f"slots{slots}", {"train.sh": train_sh(nap), "program.md": "p\n"}
        )
        self.neurolink = NeuroLink()
        self.worker = self.neurolink.create_research_worker(
            {
                "repoPath": str(self.repo),
                "mutablePaths": ["train.sh"],
                "immutablePaths": ["program.md"],
                "runCommand": RUN_COMMAND,
                "metric": METRIC,
                "timeoutMs": 60_000,
                "tag": "bench",
                "slots": slots,
            },
            proposer=ScriptedProposer(step),
        )
        self.events: Trace = []
        self.recording = False
        self.neurolink.get_event_emitter().on("*", self._record)
        self.locks: dict[str, list[list[float]]] = {"propose": [], "decide": []}
        self.locks_timed = False
        self.errors: list[str] = []
        """Messages of the engine errors that ended a round (the round was run again)."""

    def _record(self, event: Any) -> None:
        if self.recording:
            source = getattr(event, "source", None)
            self.events.append(
                (
                    time.perf_counter(),
                    event.type,
                    getattr(event, "phase", None),
                    getattr(event, "cycle", None),
                    getattr(source, "slot", None),
                )
            )

    async def start(self) -> None:
        """The baseline and one cycle per slot (the slots' worktrees are made here)."""
        await self.worker.run(max_cycles=1 + self.slots)
        for name in ("propose", "decide"):  # private attributes: timed only if they exist
            inner = getattr(self.worker, f"_{name}_lock", None)
            if inner is not None and hasattr(inner, "acquire") and hasattr(inner, "release"):
                setattr(self.worker, f"_{name}_lock", TimedLock(inner, self.locks[name]))
                self.locks_timed = True

    async def round(self, cycles: int) -> dict[str, Any]:
        """``worker.run(max_cycles=cycles)``: wall time, experiments, statuses, events.

        An engine error (``run`` raises) is written down in ``errors`` and the round is run
        again, up to ``ATTEMPTS`` times: a failure is a finding, reported, not a throughput.
        """
        for attempt in range(1, ATTEMPTS + 1):
            self.events.clear()
            for log in self.locks.values():
                log.clear()
            self.recording = True
            start = time.perf_counter()
            try:
                results = await self.worker.run(max_cycles=cycles)
            except Exception as exc:
                message = f"{type(exc).__name__}: {exc}"
                self.errors.append(message)
                print(f"ENGINE ERROR, {self.slots} slot(s), attempt {attempt}: {message}")
                if attempt == ATTEMPTS:
                    raise
                continue
            finally:
                end = time.perf_counter()
                self.recording = False
            break
        statuses = Counter(r.status for r in results)
        ran = sum(n for status, n in statuses.items() if status != "invalid")
        return {
            "wall_s": end - start,
            "experiments": ran,
            "rate_per_hour": ran / (end - start) * 3600,
            "statuses": dict(statuses),
            "replays": sum("(replay of #" in r.description for r in results),
            "split": time_split(self.events, start, end, self.slots),
            "locks": lock_waits(self.locks, start, end, self.slots) if self.locks_timed else None,
        }

    async def close(self) -> None:
        await self.worker.aclose()
        await self.neurolink.aclose()


# -- where the time goes -------------------------------------------------------------------

PARTS = [
    ("to_first_phase", "cycle:start to bootstrap (slot checkout + proposal-lock wait)"),
    ("propose", "bootstrap to implement:exit (holds the proposal lock)"),
    ("validate_commit", "implement:exit to execute (validate, commit, state.json fsync)"),
    ("execute", "execute (the run: sleep + process start and clean-up)"),
    ("evaluate", "evaluate"),
    ("to_decide", "evaluate:exit to decide (decision-lock wait + verdict + state.json)"),
    ("decide_record", "decide to cycle:end (holds the decision lock: keep/revert, ledgers)"),
    ("other", "cycles without some of those phases (invalid)"),
]
IDLE = [
    ("free_between", "slot free between two of its cycles"),
    ("free_at_start", "slot free before its first cycle of the round"),
    ("free_at_end", "slot free after its last cycle of the round"),
]


def _milestones(events: list[tuple[float, str, str | None]]) -> dict[str, float]:
    found: dict[str, float] = {}
    for t, kind, phase in events:
        key = {
            "autoresearch:cycle:start": "start",
            "autoresearch:cycle:end": "end",
        }.get(kind)
        if key is None and phase is not None:
            key = f"{phase}:{kind.rsplit(':', 1)[-1]}"
        if key is not None:
            found.setdefault(key, t)
    return found


def time_split(events: Trace, start: float, end: float, slots: int) -> dict[str, Any]:
    """Seconds per part (summed over slots) and per-cycle ms of each part, from event times."""
    cycles: dict[int, list[tuple[float, str, str | None]]] = defaultdict(list)
    slot_of: dict[int, int] = {}
    for t, kind, phase, cycle, slot in events:
        if cycle is None:
            continue
        cycles[cycle].append((t, kind, phase))
        if slot is not None:
            slot_of[cycle] = slot
    totals = dict.fromkeys([k for k, _ in PARTS] + [k for k, _ in IDLE], 0.0)
    per_cycle: dict[str, list[float]] = defaultdict(list)
    spans: dict[int, list[tuple[float, float]]] = defaultdict(list)
    order = [
        ("start", "to_first_phase"),
        ("bootstrap:enter", "propose"),
        ("implement:exit", "validate_commit"),
        ("execute:enter", "execute"),
        ("execute:exit", "evaluate"),
        ("evaluate:exit", "to_decide"),
        ("decide:enter", "decide_record"),
        ("end", ""),
    ]
    for cycle, evs in cycles.items():
        m = _milestones(evs)
        if "start" not in m or "end" not in m:
            continue
        spans[slot_of.get(cycle, 1)].append((m["start"], m["end"]))
        if not all(key in m for key, _ in order):
            totals["other"] += m["end"] - m["start"]
            continue
        for (a, part), (b, _) in pairwise(order):
            seconds = m[b] - m[a]
            totals[part] += seconds
            per_cycle[part].append(seconds * 1000)
        per_cycle["cycle"].append((m["end"] - m["start"]) * 1000)
    for slot in range(1, slots + 1):
        mine = sorted(spans.get(slot, []))
        if not mine:
            totals["free_at_start"] += end - start
            continue
        totals["free_at_start"] += mine[0][0] - start
        totals["free_at_end"] += end - mine[-1][1]
        gaps = [b[0] - a[1] for a, b in pairwise(mine)]
        totals["free_between"] += sum(gaps)
        per_cycle["gap"].extend(g * 1000 for g in gaps)
    return {
        "slot_seconds": slots * (end - start),
        "seconds": totals,
        "per_cycle_ms": dict(per_cycle),
    }


def lock_waits(
    locks: dict[str, list[list[float]]], start: float, end: float, slots: int
) -> dict[str, Any]:
    """Per lock: seconds waited and held (summed), and per-acquisition waits (ms)."""
    out: dict[str, Any] = {"slot_seconds": slots * (end - start)}
    for name, log in locks.items():
        out[name] = {
            "acquisitions": len(log),
            "waited_s": sum(acq - req for _, req, acq, _ in log),
            "held_s": sum(rel - acq for _, _, acq, rel in log),
            "wait_ms": [(acq - req) * 1000 for _, req, acq, _ in log],
            "held_ms": [(rel - acq) * 1000 for _, _, acq, rel in log],
        }
    return out


# -- the run -------------------------------------------------------------------------------


async def measure(root: Path, cycles: int, rounds: int, nap: float) -> dict[str, Any]:
    sides = {n: Side(root, n, nap) for n in SLOT_COUNTS}
    samples: dict[int, list[dict[str, Any]]] = {n: [] for n in SLOT_COUNTS}
    try:
        for side in sides.values():
            await side.start()
        for i in range(1 + rounds):  # round 0 is the warm-up
            shift = i % len(SLOT_COUNTS)
            order = SLOT_COUNTS[shift:] + SLOT_COUNTS[:shift]
            for n in order:
                sample = await sides[n].round(cycles)
                if i > 0:
                    samples[n].append(sample)
            if i > 0:
                rates = "  ".join(
                    f"{n} slot(s) {samples[n][-1]['rate_per_hour']:.0f}/h" for n in SLOT_COUNTS
                )
                print(f"round {i}/{rounds}: {rates}", flush=True)
        locks_timed = sides[max(SLOT_COUNTS)].locks_timed
        errors = {str(n): list(side.errors) for n, side in sides.items()}
    finally:
        for side in sides.values():
            await side.close()
    ratios = {
        n: [
            ratio(s["rate_per_hour"], n * one["rate_per_hour"])
            for s, one in zip(samples[n], samples[1], strict=True)
        ]
        for n in SLOT_COUNTS
        if n > 1
    }
    return {
        "cycles_per_round": cycles,
        "rounds": rounds,
        "nap_s": nap,
        "locks_timed": locks_timed,
        "samples": {str(n): samples[n] for n in SLOT_COUNTS},
        "rate_per_hour": {
            str(n): summary([s["rate_per_hour"] for s in samples[n]]) for n in SLOT_COUNTS
        },
        "wall_s": {str(n): summary([s["wall_s"] for s in samples[n]]) for n in SLOT_COUNTS},
        "ratio": {str(n): summary(r) for n, r in ratios.items()},
        "statuses": {
            str(n): dict(sum((Counter(s["statuses"]) for s in samples[n]), Counter()))
            for n in SLOT_COUNTS
        },
        "replays": {str(n): sum(s["replays"] for s in samples[n]) for n in SLOT_COUNTS},
        "engine_errors": errors,
    }


def split_rows(result: dict[str, Any], n: int) -> list[list[Any]]:
    """Share of the N-slot run's slot-time per part, over all rounds."""
    rounds = result["samples"][str(n)]
    total = sum(s["split"]["slot_seconds"] for s in rounds)
    rows = []
    for key, label in PARTS + IDLE:
        seconds = sum(s["split"]["seconds"][key] for s in rounds)
        if key == "other" and seconds == 0:
            continue
        ms = [v for s in rounds for v in s["split"]["per_cycle_ms"].get(key, [])]
        rows.append([label, 100 * seconds / total, percentile(ms, 50), percentile(ms, 90)])
    return rows


def per_cycle_rows(result: dict[str, Any]) -> list[list[Any]]:
    """Median ms per cycle of each part, for every slot count side by side."""
    rows = []
    for key, label in [*PARTS[:-1], ("cycle", "whole cycle"), ("gap", IDLE[0][1])]:
        row: list[Any] = [label]
        for n in SLOT_COUNTS:
            ms = [
                v
                for s in result["samples"][str(n)]
                for v in s["split"]["per_cycle_ms"].get(key, [])
            ]
            row.append(percentile(ms, 50))
        rows.append(row)
    return rows


def lock_rows(result: dict[str, Any], n: int) -> list[list[Any]]:
    rounds = [s["locks"] for s in result["samples"][str(n)] if s["locks"]]
    if not rounds:
        return []
    total = sum(r["slot_seconds"] for r in rounds)
    rows = []
    for name in ("propose", "decide"):
        waits = [w for r in rounds for w in r[name]["wait_ms"]]
        held = [h for r in rounds for h in r[name]["held_ms"]]
        rows.append(
            [
                f"{name} lock",
                sum(r[name]["acquisitions"] for r in rounds),
                100 * sum(r[name]["waited_s"] for r in rounds) / total,
                percentile(waits, 50),
                percentile(waits, 90),
                percentile(held, 50),
                percentile(held, 90),
            ]
        )
    return rows


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--cycles", type=int, help="cycles per slot count per round (default 16)")
    p.add_argument("--rounds", type=int, help="measured rounds (default 10; --quick 2)")
    p.add_argument("--nap", type=float, default=1.0, help="seconds the experiment sleeps")
    args = p.parse_args()
    cycles = args.cycles or (8 if args.quick else 16)
    rounds = args.rounds or (2 if args.quick else 10)
    with temp_dir("slots") as root:
        result = anyio.run(measure, root, cycles, rounds, args.nap)
    biggest = max(SLOT_COUNTS)
    rows = []
    for n in SLOT_COUNTS:
        rate, wall = result["rate_per_hour"][str(n)], result["wall_s"][str(n)]
        r = result["ratio"].get(str(n))
        rows.append(
            [
                n,
                wall["median"],
                rate["median"],
                rate["p90"],
                r["median"] if r else "-",
                r["p90"] if r else "-",
                r["min"] if r else "-",
                ", ".join(f"{k} {v}" for k, v in sorted(result["statuses"][str(n)].items())),
                result["replays"][str(n)],
            ]
        )
    print()
    print(
        table(
            f"Throughput, sleep {args.nap:g} s, {cycles} cycles per slot count per round, "
            f"{rounds} rounds",
            [
                "slots",
                "wall s (median)",
                "experiments/h median",
                "p90",
                "rate_N/(N x rate_1) median",
                "p90",
                "min",
                "statuses (all rounds)",
                "replays",
            ],
            rows,
        )
    )
    checks = {n: result["ratio"][str(n)]["median"] >= TARGET for n in SLOT_COUNTS if n > 1}
    passed = all(checks.values())
    for n, ok in checks.items():
        r = result["ratio"][str(n)]
        print(
            f"{n} slots: rate_{n}/({n} x rate_1) median {r['median']:.3f}, p90 {r['p90']:.3f} "
            f"(target >= {TARGET}): {verdict(ok)}"
        )
    print()
    print(
        table(
            f"Where the {biggest}-slot run's slot-time goes (from event arrival times)",
            ["part", "% of slot-time", "per cycle median ms", "p90 ms"],
            split_rows(result, biggest),
        )
    )
    locks = lock_rows(result, biggest)
    if locks:
        print()
        print(
            table(
                f"The {biggest}-slot run's locks (timed by wrapping them)",
                [
                    "lock",
                    "acquisitions",
                    "% of slot-time waiting",
                    "wait median ms",
                    "wait p90 ms",
                    "held median ms",
                    "held p90 ms",
                ],
                locks,
            )
        )
    print()
    print(
        table(
            "Per cycle, median ms of each part, by slot count",
            ["part", *(f"{n} slot(s)" for n in SLOT_COUNTS)],
            per_cycle_rows(result),
        )
    )
    for n in SLOT_COUNTS:
        crashed = {
            k: v for k, v in result["statuses"][str(n)].items() if k not in ("keep", "discard")
        }
        if crashed:
            print(f"WARNING: {n} slot(s): cycles that did not end in keep/discard: {crashed}")
    for n, messages in result["engine_errors"].items():
        for message in messages:
            print(f"WARNING: {n} slot(s): worker.run raised (the round was run again): {message}")
    write_results(
        "slots",
        {
            "target": f"rate_N >= {TARGET} x N x rate_1 (median over rounds) for N = 2, 4",
            "passed": passed,
            "passed_per_slot_count": {str(n): ok for n, ok in checks.items()},
            "split_rows": {str(n): split_rows(result, n) for n in SLOT_COUNTS},
            "per_cycle_rows": per_cycle_rows(result),
            "lock_rows": {str(n): lock_rows(result, n) for n in SLOT_COUNTS if n > 1},
            **result,
        },
        args,
    )


if __name__ == "__main__":
    main()
