"""7. Start-up: ``autoresearch --help`` and ``import autoresearch`` against ``import typer``.

Each command is started as a fresh process (wall time from spawn to exit, bytecode caches warm,
``PYTHONDONTWRITEBYTECODE`` left as the environment has it), several repetitions, the commands
interleaved in a rotating order; medians are compared. ``python -c pass`` is shown for scale.
``python -X importtime -c "import autoresearch"`` is then run once and the modules with the
largest cumulative import time are listed, to show where the start-up goes.

Target: each of the two at most 1.5 x ``python -c "import typer"``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import PY, parser, table, verdict, write_results

TARGET = 1.5


MINIMAL_TYPER_APP = """\
import typer
app = typer.Typer()
@app.command()
def one(x: int = 1) -> None:
    \"\"\"One.\"\"\"
@app.command()
def two(y: str = "") -> None:
    \"\"\"Two.\"\"\"
app()
"""


def commands() -> dict[str, list[str]]:
    # The console script installed beside this interpreter (what a venv user runs), not a
    # version-manager shim found first on PATH, which adds its own start-up to the timing.
    beside = Path(PY).with_name("autoresearch")
    exe = str(beside) if beside.exists() else (shutil.which("autoresearch") or "autoresearch")
    return {
        "python -c pass": [PY, "-c", "pass"],
        "import typer": [PY, "-c", "import typer"],
        "import autoresearch": [PY, "-c", "import autoresearch"],
        "autoresearch --help": [exe, "--help"],
        "2-command typer app --help (for scale)": [PY, "-c", MINIMAL_TYPER_APP, "--help"],
    }


def wall_ms(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
        env={**os.environ, "COLUMNS": "100"},
    )
    return (time.perf_counter() - start) * 1000


def import_profile(top: int = 15) -> list[dict[str, Any]]:
    """The modules with the largest cumulative import time under ``import autoresearch``."""
    proc = subprocess.run(
        [PY, "-X", "importtime", "-c", "import autoresearch"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative, name = line.split(":", 1)[1].split("|", 2)
        rows.append(
            {
                "module": name.rstrip(),
                "self_ms": int(self_us) / 1000,
                "cumulative_ms": int(cumulative) / 1000,
                "depth": (len(name) - len(name.lstrip())) // 2,
            }
        )
    rows.sort(key=lambda r: -r["cumulative_ms"])
    return rows[:top]


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    reps = 5 if args.quick else 21
    cmds = commands()
    names = list(cmds)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm the caches
        wall_ms(cmds[name])
    for i in range(reps):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(wall_ms(cmds[name]))
    medians = {name: statistics.median(v) for name, v in samples.items()}
    typer_ms = medians["import typer"]
    rows = []
    passed = True
    for name in names:
        r = medians[name] / typer_ms
        scored = name in ("import autoresearch", "autoresearch --help")
        if scored:
            passed = passed and r <= TARGET
        rows.append(
            [name, medians[name], min(samples[name]), r, verdict(r <= TARGET) if scored else "-"]
        )
    print(
        table(
            f"Start-up wall time, {reps} runs each (ms)",
            ["command", "median", "min", "x import typer", f"<= {TARGET}x"],
            rows,
        )
    )
    profile = import_profile()
    print()
    print(
        table(
            "Largest cumulative imports under `import autoresearch` (one -X importtime run)",
            ["module", "cumulative ms", "self ms"],
            [
                ["  " * min(r["depth"], 6) + r["module"].strip(), r["cumulative_ms"], r["self_ms"]]
                for r in profile
            ],
        )
    )
    write_results(
        "startup",
        {
            "target": f"autoresearch --help and import autoresearch <= {TARGET}x import typer",
            "passed": passed,
            "repetitions": reps,
            "median_ms": medians,
            "ratios": {name: medians[name] / typer_ms for name in names},
            "samples_ms": samples,
            "import_profile": profile,
            "python": sys.version,
        },
        args,
    )


if __name__ == "__main__":
    main()
