"""4. Output flood: full engine cycles whose command prints 1 GiB, as lines and as one long line.

A repo whose mutable ``flood.py`` prints according to its module-level settings. The baseline
cycle prints a few lines (it warms the engine up). Then two scripted cycles:

- ``lines``: 1 GiB of 100-byte training-log lines (the last one padded so the total is exact),
  then the metric line;
- ``long line``: the metric line first, then 1 GiB on one line that never ends (no newline at
  all), so the metric search has to walk back through the whole gigabyte.

For each cycle the engine's peak resident memory is taken from the kernel (``VmHWM`` in
/proc/self/status, reset with /proc/self/clear_refs just before the cycle; a 2 ms sampling
thread cross-checks it), and growth = peak - RSS before the cycle. The cycle's log file must hold
exactly the bytes the command wrote (size and last bytes checked) and the metric must be read.

Target: peak RSS growth < 30 MB (MiB here) per cycle, log complete.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import anyio
from _common import METRIC, PY, make_repo, parser, table, temp_dir, verdict, write_results

from autoresearch import Edit, NeuroLink, ScriptedProposer, ScriptedStep

MIB = 1024 * 1024
TARGET_MIB = 30.0
LINE = b"step 000000 | loss 2.345678 | lr 0.000600 | tok/s 123456 | mfu 41.2% | dt 0.120s | ok\n"
assert len(LINE) <= 100

FLOOD = """\
import os, sys
MODE = "{mode}"
SIZE = {size}
VALUE = {value}
out = sys.stdout.buffer
line = {line!r}.ljust(99, b" ") + b"\\n"
if MODE == "lines":
    block = line * (1024 * 1024 // len(line))
    left = SIZE
    while left >= len(block):
        out.write(block)
        left -= len(block)
    out.write(line * (left // len(line)))
    if left % len(line):  # pad the last line so the metric starts a line of its own
        out.write(b"#" * (left % len(line) - 1) + b"\\n")
    out.write(f"val_bpb: {{VALUE:.6f}}\\n".encode())
elif MODE == "long":
    out.write(f"val_bpb: {{VALUE:.6f}}\\n".encode())
    block = b"x" * (1024 * 1024)
    left = SIZE
    while left > 0:
        out.write(block[: min(left, len(block))])
        left -= min(left, len(block))
else:
    out.write(b"warming up\\n")
    out.write(f"val_bpb: {{VALUE:.6f}}\\n".encode())
out.flush()
"""


def flood_source(mode: str, size: int, value: float) -> str:
    return FLOOD.format(mode=mode, size=size, value=value, line=LINE.rstrip(b"\n"))


def expected_bytes(mode: str, size: int, value: float) -> int:
    metric = len(f"val_bpb: {value:.6f}\n")
    if mode in ("lines", "long"):
        return size + metric
    return len(b"warming up\n") + metric


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


class Sampler(threading.Thread):
    """Reads this process's RSS every 2 ms and keeps the peak."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kib = 0
        self.running = threading.Event()
        self.running.set()

    def reset(self) -> None:
        self.peak_kib = _status_kib("VmRSS")

    def run(self) -> None:
        while self.running.is_set():
            self.peak_kib = max(self.peak_kib, _status_kib("VmRSS"))
            time.sleep(0.002)


async def measure(root: Path, size: int) -> dict[str, Any]:
    repo = make_repo(
        root / "repo", {"flood.py": flood_source("warmup", 0, 1.0), "program.md": "# flood\n"}
    )
    plan = [("lines", 0.9), ("long", 0.8)]
    steps = [
        ScriptedStep(
            description=f"{mode} flood",
            edits=[Edit(path="flood.py", content=flood_source(mode, size, value))],
        )
        for mode, value in plan
    ]
    neurolink = NeuroLink()
    worker = neurolink.create_research_worker(
        repo_path=str(repo),
        mutable_paths=["flood.py"],
        immutable_paths=["program.md"],
        run_command=f"{PY} flood.py",
        metric=METRIC,
        timeout_ms=600_000,
        tag="flood",
        proposer=ScriptedProposer(steps),
    )
    sampler = Sampler()
    sampler.start()
    results: dict[str, Any] = {}
    try:
        warm = await worker.run_experiment_cycle()  # baseline: small output
        results["warmup"] = {"status": warm.status, "metric": warm.metric_value}
        for mode, value in plan:
            before = _status_kib("VmRSS")
            kernel_peak = _reset_peak()
            sampler.reset()
            start = time.perf_counter()
            result = await worker.run_experiment_cycle()
            wall = time.perf_counter() - start
            hwm = _status_kib("VmHWM") if kernel_peak else 0
            sampled = sampler.peak_kib
            peak = max(hwm, sampled)
            log = worker.workspace.log_path(result.cycle)
            want = expected_bytes(mode, size, value)
            got = log.stat().st_size
            with log.open("rb") as handle:
                handle.seek(max(0, got - 16))
                tail = handle.read()
            tail_ok = tail.endswith(
                b"x" * 16 if mode == "long" else f"{value:.6f}\n".encode()[-16:]
            )
            record = worker.history[-1]
            results[mode] = {
                "status": result.status,
                "metric": result.metric_value,
                "metric_ok": result.metric_value == value,
                "cycle_s": wall,
                "phase_ms": record.phase_durations_ms,
                "rss_before_mib": before / 1024,
                "peak_mib": peak / 1024,
                "peak_source": "VmHWM" if kernel_peak and hwm >= sampled else "sampled",
                "growth_mib": (peak - before) / 1024,
                "sampled_growth_mib": (sampled - before) / 1024,
                "log_bytes": got,
                "expected_bytes": want,
                "log_complete": got == want and tail_ok,
            }
            log.unlink()  # free the disk before the next gigabyte
            (worker.workspace.run_log).unlink(missing_ok=True)
    finally:
        sampler.running.clear()
        sampler.join()
        await worker.aclose()
        await neurolink.aclose()
    return results


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    size = 100 * MIB if args.quick else 1024 * MIB
    with temp_dir("flood") as root:
        results = anyio.run(measure, root, size)
    rows = []
    passed = True
    for mode, label in (
        ("lines", "1 GiB of lines" if not args.quick else "100 MiB of lines"),
        ("long", "one line, no newline"),
    ):
        r = results[mode]
        ok = r["growth_mib"] < TARGET_MIB and r["log_complete"] and r["metric_ok"]
        passed = passed and ok
        rows.append(
            [
                label,
                r["status"],
                r["cycle_s"],
                r["phase_ms"].get("evaluate", 0) / 1000,
                r["rss_before_mib"],
                r["growth_mib"],
                f"{r['log_bytes']:,}",
                r["log_complete"],
                r["metric_ok"],
                verdict(ok),
            ]
        )
    print(
        table(
            f"Output flood through a full engine cycle ({size // MIB} MiB per run)",
            [
                "output",
                "status",
                "cycle s",
                "metric search s",
                "RSS before MiB",
                "peak growth MiB",
                "log bytes",
                "log complete",
                "metric read",
                f"< {TARGET_MIB:.0f} MiB",
            ],
            rows,
        )
    )
    write_results(
        "output_flood",
        {
            "target": f"engine peak RSS growth < {TARGET_MIB} MiB, log complete",
            "bytes_per_run": size,
            "passed": passed,
            **results,
        },
        args,
    )


if __name__ == "__main__":
    main()
