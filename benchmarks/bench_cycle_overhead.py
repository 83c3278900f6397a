"""1. Cycle overhead: the engine against a hand-written shell loop, in the same run.

Two identical 50-file repositories. One is researched by autoresearch (public SDK, scripted
proposer with zero think time), the other by program.md's loop in bash (sed, git commit, run to
run.log, grep, git reset --hard on discard). Both run the same trivial command (``sh train.sh``,
which prints the metric) on the same sequence of proposals: half kept, half discarded.

Each round runs four measurements in a rotating order (an engine cycle, a shell-loop cycle, the
bare command started from Python the way the engine starts it, the bare command started from
bash), so a slow patch of the machine hits both loops alike. Overhead = cycle wall time minus the
median bare-command time. The Python-started bare time is subtracted from both loops; it is the
larger of the two bare timings, so if anything the shell loop's overhead comes out too small,
which makes the engine look worse, not better.

Target: median engine overhead <= 0.5 x the shell loop's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
from _common import bench_repo, parser, ratio, summary, table, temp_dir, verdict, write_results
from _loops import EngineLoop, Recorder, ShellLoop, interleaved

from autoresearch import PHASES

TARGET = 0.5
WARMUP = 5


def overheads(samples: dict[str, list[float]], cycle: str, bare: str) -> dict[str, Any]:
    """Cycle and overhead summaries for one loop, overhead = cycle - median(bare)."""
    base = summary(samples[bare])["median"]
    return {
        "cycle_ms": summary(samples[cycle]),
        "overhead_ms": summary([ms - base for ms in samples[cycle]]),
    }


async def measure(root: Path, files: int, cycles: int) -> dict[str, Any]:
    engine_repo = bench_repo(root / "engine", files)
    shell_repo = bench_repo(root / "shell", files)
    engine, shell = EngineLoop(engine_repo, trace=True), ShellLoop(shell_repo)
    rec = Recorder()
    try:
        await engine.cycle()  # the baselines: the first cycle of each session
        shell.baseline()
        await interleaved(
            [
                rec.engine("engine", engine),
                rec.shell("shell", shell),
                rec.bare("bare", engine_repo, root / "bare.log"),
                rec.bare_from_shell("bare_from_bash", shell),
            ],
            rounds=cycles,
            warmup=WARMUP,
        )
    finally:
        await engine.close()
        shell.close()
    eng = overheads(rec.samples, "engine", "bare")
    own = summary(rec.samples["engine.duration_ms"])
    parts = [*PHASES, "inside", "outside"]
    breakdown = {part: summary(rec.samples[f"engine.{part}"]) for part in parts}
    sh = overheads(rec.samples, "shell", "bare")
    return {
        "files": files,
        "cycles": cycles,
        "status_mismatches": rec.mismatches,
        "bare_ms": summary(rec.samples["bare"]),
        "bare_from_bash_ms": summary(rec.samples["bare_from_bash"]),
        "engine": {
            **eng,
            "duration_ms_field": own,
            "breakdown_ms": breakdown,
        },
        "shell": sh,
        "ratio_median": ratio(eng["overhead_ms"]["median"], sh["overhead_ms"]["median"]),
        "ratio_p90": ratio(eng["overhead_ms"]["p90"], sh["overhead_ms"]["p90"]),
    }


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    cycles = 20 if args.quick else 200
    with temp_dir("overhead") as root:
        result = anyio.run(measure, root, 50, cycles)
    eng, sh = result["engine"], result["shell"]
    rows = [
        [
            "bare command (sh train.sh)",
            result["bare_ms"]["median"],
            result["bare_ms"]["p90"],
            "-",
            "-",
        ],
        [
            "shell loop (program.md)",
            sh["cycle_ms"]["median"],
            sh["cycle_ms"]["p90"],
            sh["overhead_ms"]["median"],
            sh["overhead_ms"]["p90"],
        ],
        [
            "autoresearch engine",
            eng["cycle_ms"]["median"],
            eng["cycle_ms"]["p90"],
            eng["overhead_ms"]["median"],
            eng["overhead_ms"]["p90"],
        ],
    ]
    print(
        table(
            f"Cycle overhead, 50-file repo, {cycles} cycles each (ms)",
            ["loop", "cycle median", "cycle p90", "overhead median", "overhead p90"],
            rows,
        )
    )
    passed = result["ratio_median"] <= TARGET
    print(
        f"\nengine/shell overhead: median {result['ratio_median']:.2f}x, "
        f"p90 {result['ratio_p90']:.2f}x (target <= {TARGET}x median): {verdict(passed)}"
    )
    print(f"bare command started from bash: median {result['bare_from_bash_ms']['median']:.2f} ms")
    bd = eng["breakdown_ms"]
    print()
    print(
        table(
            "Where an engine cycle's time goes (ms, from event arrival times)",
            ["part", "median", "p90"],
            [[part, bd[part]["median"], bd[part]["p90"]] for part in bd],
        )
    )
    print(
        "(outside = cycle:start to cycle:end minus the phases: state.json written before each "
        "phase, the ledgers and state.json at the end, events)"
    )
    if result["status_mismatches"]:
        print(f"WARNING: {result['status_mismatches']} cycles ended with an unexpected status")
    write_results(
        "cycle_overhead",
        {
            "target": f"engine overhead <= {TARGET}x shell loop overhead (median)",
            "passed": passed,
            **result,
        },
        args,
    )


if __name__ == "__main__":
    main()
