"""2. Scaling: cycle overhead with 100 / 1,000 / 10,000 files and with 10 / 10,000 prior cycles.

Files: one engine repo and one shell-loop repo per size (train.sh, program.md and filler source
files in folders of 100), all researched in the same run; each round runs one engine cycle and
one shell cycle per size plus the bare command, in a rotating order. Overhead is cycle time minus
the median bare command time of that size.

History: a session of 10 real cycles is run, then copied; in the copy, runs.jsonl is extended
with 9,990 synthetic but valid records (discards, and every 25th a crash with its log file),
results.tsv is rewritten to match (one row per record) and state.json is brought in line, so a
worker opening it sees 10,000 prior cycles. Fresh workers on both copies then run the same
proposals, interleaved. Opening the session (``prepare``: reading and checking the whole ledger
once) is timed separately; it is not part of the per-cycle overhead.

Targets: engine overhead at 10,000 files <= 3x that at 100 files; at 10,000 prior cycles <=
1.5x that at 10 (medians).

For information (no target): the same engine/shell pair on a 50-file repo with and without 500
extra idle processes on the machine (``sleep``), alternating blocks, because the engine walks
the machine's process table (/proc) to find and watch the experiment's process tree.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import anyio
from _common import bench_repo, parser, ratio, summary, table, temp_dir, verdict, write_results
from _loops import EngineLoop, Recorder, ShellLoop, interleaved

from autoresearch import RunRecord
from autoresearch.workspace import format_tsv_row, tsv_header

FILE_TARGET = 3.0
HISTORY_TARGET = 1.5
WARMUP = 5
SIZES = (100, 1_000, 10_000)
PRIOR_REAL = 10
PRIOR_LONG = 10_000


def over(samples: dict[str, list[float]], cycle: str, bare: str) -> dict[str, Any]:
    base = summary(samples[bare])["median"]
    return {
        "cycle_ms": summary(samples[cycle]),
        "overhead_ms": summary([ms - base for ms in samples[cycle]]),
    }


async def files_scaling(root: Path, cycles: int) -> dict[str, Any]:
    rec = Recorder()
    engines: dict[int, EngineLoop] = {}
    shells: dict[int, ShellLoop] = {}
    steps = []
    try:
        for size in SIZES:
            engine_repo = bench_repo(root / f"engine{size}", size)
            engines[size] = EngineLoop(engine_repo)
            shells[size] = ShellLoop(bench_repo(root / f"shell{size}", size))
            await engines[size].cycle()
            shells[size].baseline()
            steps += [
                rec.engine(f"engine{size}", engines[size]),
                rec.shell(f"shell{size}", shells[size]),
                rec.bare(f"bare{size}", engine_repo, root / f"bare{size}.log"),
            ]
        await interleaved(steps, rounds=cycles, warmup=WARMUP)
    finally:
        for engine in engines.values():
            await engine.close()
        for shell in shells.values():
            shell.close()
    out: dict[str, Any] = {"cycles": cycles, "status_mismatches": rec.mismatches, "sizes": {}}
    for size in SIZES:
        out["sizes"][str(size)] = {
            "bare_ms": summary(rec.samples[f"bare{size}"]),
            "engine": over(rec.samples, f"engine{size}", f"bare{size}"),
            "shell": over(rec.samples, f"shell{size}", f"bare{size}"),
        }
    small, big = out["sizes"][str(SIZES[0])], out["sizes"][str(SIZES[-1])]
    out["engine_ratio"] = ratio(
        big["engine"]["overhead_ms"]["median"], small["engine"]["overhead_ms"]["median"]
    )
    out["shell_ratio"] = ratio(
        big["shell"]["overhead_ms"]["median"], small["shell"]["overhead_ms"]["median"]
    )
    out["passed"] = out["engine_ratio"] <= FILE_TARGET
    return out


def extend_ledger(repo: Path, total: int) -> None:
    """Grow the session in ``repo`` to ``total`` records with valid synthetic ones."""
    ws = repo / ".autoresearch"
    lines = (ws / "runs.jsonl").read_text().splitlines()
    real = [RunRecord.model_validate_json(line) for line in lines]
    keeps = [r for r in real if r.status == "keep"]
    best = keeps[-1]
    candidates = [r.commit for r in real if r.status == "discard"] or [best.commit]
    template = next(r for r in real if r.status == "discard")
    records = list(real)
    logs = ws / "logs"
    for number in range(len(real) + 1, total + 1):
        crash = number % 25 == 0
        log_path = None
        if crash:
            log = logs / f"{number}.log"
            log.write_text("training...\nTraceback (most recent call last):\nRuntimeError: boom\n")
            log_path = f".autoresearch/logs/{number}.log"
        records.append(
            template.model_copy(
                update={
                    "cycle": number,
                    "commit": candidates[number % len(candidates)],
                    "parent_commit": best.commit,
                    "status": "crash" if crash else "discard",
                    "metric": None if crash else 2.0,
                    "exit_code": 1 if crash else 0,
                    "description": f"synthetic proposal {number}"
                    + (" (exit code 1)" if crash else ""),
                    "log_path": log_path or template.log_path,
                }
            )
        )
    with (ws / "runs.jsonl").open("w") as handle:
        for record in records:
            handle.write(record.model_dump_json(by_alias=True) + "\n")
    tsv = tsv_header("val_bpb") + "".join(format_tsv_row(r) for r in records)
    (ws / "results.tsv").write_text(tsv)
    state = json.loads((ws / "state.json").read_text())
    state.update({"cycleCount": len(records), "lastStatus": records[-1].status})
    (ws / "state.json").write_text(json.dumps(state, indent=2) + "\n")


async def history_scaling(root: Path, cycles: int) -> dict[str, Any]:
    seed_repo = bench_repo(root / "session", 50)
    first = EngineLoop(seed_repo)
    for _ in range(PRIOR_REAL):
        await first.cycle()
    proposals_done = first.proposals
    await first.close()
    short, long = root / "prior10", root / "prior10000"
    shutil.copytree(seed_repo, short, symlinks=True)
    shutil.copytree(seed_repo, long, symlinks=True)
    extend_ledger(long, PRIOR_LONG)
    rec = Recorder()
    loops = {
        "short": EngineLoop(short, first_proposal=proposals_done),
        "long": EngineLoop(long, first_proposal=proposals_done),
    }
    prepare: dict[str, float] = {}
    try:
        for name, loop in loops.items():
            prepare[name] = await loop.prepare()
        await interleaved(
            [
                rec.engine("short", loops["short"]),
                rec.engine("long", loops["long"]),
                rec.bare("bare", short, root / "bare.log"),
            ],
            rounds=cycles,
            warmup=WARMUP,
        )
        counts = {name: len(loop.worker.history) for name, loop in loops.items()}
    finally:
        for loop in loops.values():
            await loop.close()
    out = {
        "cycles": cycles,
        "status_mismatches": rec.mismatches,
        "prior": {"short": PRIOR_REAL, "long": PRIOR_LONG},
        "records_at_end": counts,
        "prepare_ms": prepare,
        "bare_ms": summary(rec.samples["bare"]),
        "short": over(rec.samples, "short", "bare"),
        "long": over(rec.samples, "long", "bare"),
    }
    out["ratio"] = ratio(
        out["long"]["overhead_ms"]["median"], out["short"]["overhead_ms"]["median"]
    )
    out["passed"] = out["ratio"] <= HISTORY_TARGET
    return out


def spawn_sleepers(count: int) -> list[subprocess.Popen[bytes]]:
    """``count`` idle processes, so the machine's process table is larger."""
    return [
        subprocess.Popen(["sleep", "3600"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        for _ in range(count)
    ]


async def process_scaling(root: Path, blocks: int, per_block: int, extra: int) -> dict[str, Any]:
    engine_repo = bench_repo(root / "engine", 50)
    engine, shell = EngineLoop(engine_repo), ShellLoop(bench_repo(root / "shell", 50))
    rec = Recorder()
    try:
        await engine.cycle()
        shell.baseline()
        for _ in range(blocks):
            for cond in ("quiet", "busy"):
                sleepers = spawn_sleepers(extra if cond == "busy" else 0)
                try:
                    await interleaved(
                        [
                            rec.engine(f"engine_{cond}", engine),
                            rec.shell(f"shell_{cond}", shell),
                            rec.bare(f"bare_{cond}", engine_repo, root / "bare.log"),
                        ],
                        rounds=per_block,
                        warmup=1,
                    )
                finally:
                    for proc in sleepers:
                        proc.kill()
                    for proc in sleepers:
                        proc.wait()
    finally:
        await engine.close()
        shell.close()
    out: dict[str, Any] = {
        "extra_processes": extra,
        "blocks": blocks,
        "cycles_per_block": per_block,
        "status_mismatches": rec.mismatches,
    }
    for cond in ("quiet", "busy"):
        out[cond] = {
            "engine": over(rec.samples, f"engine_{cond}", f"bare_{cond}"),
            "shell": over(rec.samples, f"shell_{cond}", f"bare_{cond}"),
            "bare_ms": summary(rec.samples[f"bare_{cond}"]),
        }
    return out


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    cycles = 20 if args.quick else 200
    with temp_dir("scaling") as root:
        files = anyio.run(files_scaling, root / "files", cycles)
    with temp_dir("history") as root:
        history = anyio.run(history_scaling, root, cycles)
    with temp_dir("processes") as root:
        processes = anyio.run(
            process_scaling, root, 2 if args.quick else 10, 5 if args.quick else 10, 500
        )

    rows = []
    for size in SIZES:
        s = files["sizes"][str(size)]
        eng, sh = s["engine"]["overhead_ms"], s["shell"]["overhead_ms"]
        rows.append(
            [
                f"{size:,} files",
                eng["median"],
                eng["p90"],
                sh["median"],
                sh["p90"],
                ratio(eng["median"], sh["median"]),
            ]
        )
    print(
        table(
            f"Scaling with repository size, {cycles} cycles each (overhead ms)",
            ["repo", "engine median", "engine p90", "shell median", "shell p90", "engine/shell"],
            rows,
        )
    )
    print(
        f"\nengine overhead 10,000 files / 100 files: {files['engine_ratio']:.2f}x "
        f"(target <= {FILE_TARGET}x): {verdict(files['passed'])}; "
        f"shell loop: {files['shell_ratio']:.2f}x"
    )

    rows = [
        [
            f"{history['prior'][k]:,} prior cycles",
            history[k]["overhead_ms"]["median"],
            history[k]["overhead_ms"]["p90"],
            history["prepare_ms"][k],
        ]
        for k in ("short", "long")
    ]
    print()
    print(
        table(
            f"Scaling with history length, {cycles} cycles each (ms)",
            ["ledger", "overhead median", "overhead p90", "open session (prepare)"],
            rows,
        )
    )
    print(
        f"\nengine overhead 10,000 / 10 prior cycles: {history['ratio']:.2f}x "
        f"(target <= {HISTORY_TARGET}x): {verdict(history['passed'])}"
    )
    rows = [
        [
            label,
            processes[cond]["engine"]["overhead_ms"]["median"],
            processes[cond]["shell"]["overhead_ms"]["median"],
            ratio(
                processes[cond]["engine"]["overhead_ms"]["median"],
                processes[cond]["shell"]["overhead_ms"]["median"],
            ),
        ]
        for cond, label in (
            ("quiet", "as the machine is"),
            ("busy", f"+{processes['extra_processes']} idle processes"),
        )
    ]
    print()
    print(
        table(
            "For information: other processes on the machine (overhead ms, 50 files)",
            ["machine", "engine median", "shell median", "engine/shell"],
            rows,
        )
    )
    mismatches = (
        files["status_mismatches"] + history["status_mismatches"] + processes["status_mismatches"]
    )
    if mismatches:
        print(f"WARNING: {mismatches} cycles ended with an unexpected status")
    write_results(
        "scaling",
        {
            "targets": {
                "files": f"overhead(10,000 files) <= {FILE_TARGET}x overhead(100 files)",
                "history": f"overhead(10,000 prior) <= {HISTORY_TARGET}x overhead(10 prior)",
            },
            "passed": files["passed"] and history["passed"],
            "files": files,
            "history": history,
            "processes_info": processes,
        },
        args,
    )


if __name__ == "__main__":
    main()
