"""Run every benchmark, one after another, each in its own process; then print a summary.

    python benchmarks/run_all.py            # the full set (the search benchmark takes longest)
    python benchmarks/run_all.py --quick    # small N everywhere: a smoke test of all thirteen
    python benchmarks/run_all.py --only events startup

Each benchmark prints its own table and writes benchmarks/results/<name>.json; this script reads
those files back and prints one line per target, and exits 1 if a benchmark failed to run
(a missed target is a result, not a failure of the script).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    ("cycle_overhead", "bench_cycle_overhead.py", "1. cycle overhead vs shell loop"),
    ("scaling", "bench_scaling.py", "2. scaling (files, history)"),
    ("timeout_kill", "bench_timeout_kill.py", "3. timeout kill"),
    ("output_flood", "bench_output_flood.py", "4. output flood"),
    ("events", "bench_events.py", "5. events vs raw blinker"),
    ("search", "bench_search.py", "6. search efficiency"),
    ("startup", "bench_startup.py", "7. start-up"),
    ("slots", "bench_slots.py", "8. parallel slots throughput"),
    ("noise", "bench_noise.py", "9. noise-aware decisions"),
    ("abort", "bench_abort.py", "10. early abort"),
    ("llm_calls", "bench_llm_calls.py", "11. LLM proposer calls per cycle"),
    ("real_scripts", "bench_real_scripts.py", "12. offline proposer, real-style scripts"),
    ("ray", "bench_ray.py", "13. Ray backend vs local"),
]


def headline(name: str, data: dict) -> str:
    """One line that says what was measured against the target."""
    if name == "cycle_overhead":
        return (
            f"engine overhead {data['engine']['overhead_ms']['median']:.1f} ms vs shell "
            f"{data['shell']['overhead_ms']['median']:.1f} ms = {data['ratio_median']:.2f}x "
            "(target <= 0.5x)"
        )
    if name == "scaling":
        return (
            f"10k/100 files {data['files']['engine_ratio']:.2f}x (<= 3x), "
            f"10k/10 prior cycles {data['history']['ratio']:.2f}x (<= 1.5x)"
        )
    if name == "timeout_kill":
        a, b = data["in_group"], data["setsid_grandchild"]
        return (
            f"last process gone max {a['last_gone_after_deadline_ms']['max']:.0f} ms / "
            f"{b['last_gone_after_deadline_ms']['max']:.0f} ms (setsid) after the deadline, "
            f"limit {data['limit_ms']:.0f} ms; survivors {a['survivors'] + b['survivors']}"
        )
    if name == "output_flood":
        return (
            f"RSS growth {data['lines']['growth_mib']:.1f} MiB (lines), "
            f"{data['long']['growth_mib']:.1f} MiB (long line); logs complete: "
            f"{data['lines']['log_complete'] and data['long']['log_complete']} (< 30 MiB)"
        )
    if name == "events":
        worst = max((r for r in data["rows"] if r["subscribers"]), key=lambda r: r["ratio"])
        return (
            f"worst ratio {worst['ratio']:.2f}x ({worst['subscribers']} {worst['kind']}) "
            "(target <= 1.5x)"
        )
    if name == "search":
        if not data["tpe_available"]:
            return "TPE skipped (optuna not installed)"
        parts = [
            f"{k} {v['methods']['local']['median_regret']:.3f} vs "
            f"{v['methods']['tpe']['median_regret']:.3f}"
            for k, v in data["objectives"].items()
        ]
        return "local vs TPE median regret: " + ", ".join(parts)
    if name == "startup":
        r = data["ratios"]
        return (
            f"import {r['import autoresearch']:.2f}x, --help {r['autoresearch --help']:.2f}x "
            "import typer (target <= 1.5x)"
        )
    if name == "slots":
        r = data["ratio"]
        errors = sum(len(v) for v in data.get("engine_errors", {}).values())
        return (
            f"rate_N/(N x rate_1): 2 slots {r['2']['median']:.3f}, 4 slots "
            f"{r['4']['median']:.3f} (target >= 0.95)"
            + (f"; {errors} engine error(s), rounds rerun" if errors else "")
        )
    if name == "noise":
        primary = data["primary"]
        parts = []
        for level, r in data["noise_levels"].items():
            a, single = r["rules"][primary], r["rules"]["single"]
            parts.append(
                f"sigma {float(level):g}x step: false keeps {a['false_keeps']}/{a['keeps']} "
                f"(single {single['false_keeps']}/{single['keeps']}), regret "
                f"{a['regret']['median']:.3f} vs {single['regret']['median']:.3f}"
            )
        return f"{primary} vs single run: " + "; ".join(parts) + " (targets <= 5 %, <= single)"
    if name == "abort":
        return (
            f"run time saved {100 * data['saved_run_time']:.0f} % (steps "
            f"{100 * data['saved_steps']:.0f} %), final best equal: {data['same_final_best']}, "
            f"winners aborted {data['winners_aborted']} (targets >= 30 %, 0)"
        )
    if name == "llm_calls":
        calls = {r["run"]: r["calls_per_cycle"]["max"] for r in data["runs"]}
        return (
            f"calls per cycle: combined {calls['combined']:.0f}, plan then edits "
            f"{calls['plan-then-edits']:.0f}, hybrid {calls.get('hybrid', 0):.0f} (target <= 2)"
        )
    if name == "real_scripts":
        last = data["cuts"][-1]
        wins = sum(
            v[f"local@{last}"] is not None
            and (v[f"tpe@{last}"] is None or v[f"local@{last}"] <= v[f"tpe@{last}"])
            for v in data["summary"].values()
        )
        return (
            f"local <= TPE (re-evaluated, {last} runs) on {wins} of {len(data['summary'])} "
            f"scripts; {data['touched']} proposals touched a left-out or no-effect parameter"
        )
    if name == "ray":
        return (
            f"per experiment {data['ray_overhead_ms']['median']:.0f} ms over the run on Ray vs "
            f"{data['local_overhead_ms']['median']:.0f} ms locally ({data['ratio_median']:.2f}x "
            f"wall time at {data['nap_s']:g} s); 2 Ray slots: rate_2/(2 x rate_1) "
            f"{data['throughput_ratio']:.3f}"
        )
    return ""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small N everywhere (smoke test)")
    p.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="run only these (" + ", ".join(n for n, _, _ in BENCHMARKS) + ")",
    )
    args = p.parse_args()
    chosen = [b for b in BENCHMARKS if not args.only or b[0] in args.only]
    broken = []
    lines = []
    for name, script, title in chosen:
        print(f"\n=== {title} ({script}{' --quick' if args.quick else ''}) ===\n", flush=True)
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(HERE / script), *(["--quick"] if args.quick else [])], check=False
        )
        seconds = time.perf_counter() - start
        result = HERE / "results" / f"{name}.json"
        if proc.returncode != 0 or not result.exists():
            broken.append(name)
            lines.append(f"{title:34s} ERROR (exit {proc.returncode})")
            continue
        data = json.loads(result.read_text())
        passed = data.get("passed")
        mark = "n/a " if passed is None else ("PASS" if passed else "MISS")
        lines.append(f"{title:34s} {mark}  {headline(name, data)}  [{seconds:.0f} s]")
    print("\n=== summary ===")
    print("\n".join(lines))
    if broken:
        sys.exit(1)


if __name__ == "__main__":
    main()
