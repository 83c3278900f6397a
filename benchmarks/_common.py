"""Helpers shared by the benchmark scripts: repos, statistics, tables, JSON results, machine info.

The benchmarks never import from ``tests/``; everything they need to set up a repository is here.
Each script is run as ``python benchmarks/<name>.py [--quick]`` (this folder is then on
``sys.path``, so ``import _common`` works).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
PY = sys.executable

METRIC = {"name": "val_bpb", "pattern": r"^val_bpb:\s+([\d.]+)", "direction": "lower"}
"""The metric every engine benchmark reads (the seed's val_bpb line)."""


# -- command line --------------------------------------------------------------------------


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small N, for smoke-testing")
    p.add_argument(
        "--no-write", action="store_true", help="print the table only; write no JSON results"
    )
    return p


# -- statistics ----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, p90, mean, min, max and count of ``values``."""
    if not values:
        return {
            "n": 0,
            "median": math.nan,
            "p90": math.nan,
            "mean": math.nan,
            "min": math.nan,
            "max": math.nan,
        }
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p90": percentile(values, 90),
        "mean": statistics.fmean(values),
        "min": min(values),
        "max": max(values),
    }


def ratio(a: float, b: float) -> float:
    """``a / b``, NaN when ``b`` is not positive."""
    return a / b if b > 0 else math.nan


# -- output --------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 2) -> str:
    """Format a table cell: floats with ``digits`` decimals, booleans as yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.{digits}f}"
    return str(value)


def table(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table (readable in a terminal too), with ``title`` above it."""
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]

    def line(parts: Sequence[str]) -> str:
        return "| " + " | ".join(p.ljust(w) for p, w in zip(parts, widths, strict=True)) + " |"

    out = [f"### {title}", "", line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def verdict(passed: bool | None) -> str:
    """PASS / MISS / n/a for a target column."""
    if passed is None:
        return "n/a"
    return "PASS" if passed else "MISS"


def _load_average() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (math.nan, math.nan, math.nan)


def _filesystem(path: str) -> str:
    """The file system type (ext4, tmpfs, ...) of the mount holding ``path``."""
    best, kind = "", "unknown"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) > 2 and path.startswith(parts[1]) and len(parts[1]) > len(best):
                best, kind = parts[1], parts[2]
    except OSError:
        pass
    return kind


LOAD_AT_START = _load_average()
"""The 1/5/15-minute load averages when the benchmark started (other work on the machine)."""


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        git = subprocess.run(
            ["git", "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        git = "git not found"
    load = _load_average()
    try:
        from importlib.metadata import version

        package = version("autoresearch")
    except Exception:
        package = "unknown"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=BENCH_DIR,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=BENCH_DIR,
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        commit += " (with uncommitted changes)" if dirty.strip() else ""
    except OSError:
        commit = "unknown"
    return {
        "project_commit": commit,
        "cpu_model": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "git": git,
        "autoresearch": package,
        "load_average_at_start": [round(x, 2) for x in LOAD_AT_START],
        "load_average_at_end": [round(x, 2) for x in load],
        "temp_dir": tempfile.gettempdir(),
        "temp_dir_filesystem": _filesystem(tempfile.gettempdir()),
    }


def write_results(name: str, payload: dict[str, Any], args: argparse.Namespace) -> Path | None:
    """Write ``payload`` (plus machine info and the mode) to benchmarks/results/<name>.json."""
    if getattr(args, "no_write", False):
        return None
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": name,
        "quick": bool(getattr(args, "quick", False)),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        **payload,
    }
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2, default=_json_default) + "\n")
    print(f"\nresults written to {path.relative_to(BENCH_DIR.parent)}")
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    raise TypeError(f"cannot serialise {type(value).__name__}")


# -- repositories --------------------------------------------------------------------------


def git_env() -> dict[str, str]:
    """The environment for git CLI calls: no system config, a fixed identity."""
    env = dict(os.environ)
    env.update(
        {
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "Bench",
            "GIT_AUTHOR_EMAIL": "bench@example.com",
            "GIT_COMMITTER_NAME": "Bench",
            "GIT_COMMITTER_EMAIL": "bench@example.com",
            "LC_ALL": "C",
        }
    )
    return env


def git(repo: Path, *args: str) -> str:
    """Run the git CLI in ``repo`` and return its stdout."""
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=git_env()
    ).stdout.strip()


def make_repo(path: Path, files: dict[str, str]) -> Path:
    """A git repository at ``path`` with ``files`` committed on ``main``."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Bench")
    git(path, "config", "user.email", "bench@example.com")
    for rel, text in files.items():
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


TRAIN_SH = 'echo "training..."\necho "val_bpb: {value:.6f}"\n'
"""The trivial experiment: a shell script that prints the metric (the edited number)."""

PROGRAM_MD = "# Research program\nMake val_bpb lower by editing train.sh.\n"


def filler(count: int) -> dict[str, str]:
    """``count`` ordinary source files spread over folders of at most 100 files each."""
    files: dict[str, str] = {}
    for i in range(count):
        folder = f"src/pkg{i // 100:03d}"
        files[f"{folder}/module_{i:05d}.py"] = (
            f'"""Module {i}."""\n\nVALUE_{i} = {i}\n\n\ndef f_{i}(x):\n    return x + VALUE_{i}\n'
        )
    return files


def bench_repo(path: Path, total_files: int, start_value: float = 1.0) -> Path:
    """A repo of exactly ``total_files`` tracked files: train.sh, program.md and filler."""
    files = {"train.sh": TRAIN_SH.format(value=start_value), "program.md": PROGRAM_MD}
    files.update(filler(max(0, total_files - len(files))))
    return make_repo(path, files)


@contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    """A temporary directory (on the default temp file system), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=f"arbench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def time_call(func: Callable[[], Any]) -> float:
    """Wall time of ``func()`` in milliseconds."""
    start = time.perf_counter()
    func()
    return (time.perf_counter() - start) * 1000


def bare_command_ms(command: str, cwd: Path, log: Path) -> float:
    """Wall time of ``command`` run the way the engine runs it (sh -c, own session, to a log)."""
    start = time.perf_counter()
    with log.open("wb") as out:
        subprocess.run(
            ["/bin/sh", "-c", command],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            check=True,
        )
    return (time.perf_counter() - start) * 1000


def file_at(repo: Path, commits: list[str], path: str = "train.py") -> dict[str, str]:
    """``path`` at each commit, read with one ``git cat-file --batch`` call."""
    unique = list(dict.fromkeys(commits))
    proc = subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=repo,
        input="".join(f"{c}:{path}\n" for c in unique).encode(),
        capture_output=True,
        check=True,
        env=git_env(),
    )
    out, data, pos = {}, proc.stdout, 0
    for commit in unique:
        end = data.index(b"\n", pos)
        size = int(data[pos:end].split()[2])
        out[commit] = data[end + 1 : end + 1 + size].decode()
        pos = end + 1 + size + 1
    return out


def train_py(knobs: Mapping[str, object]) -> str:
    """A synthetic ``train.py``: the knobs as module constants, then ``objective.run``."""
    lines = ['"""Synthetic training run: the knobs below are tuned."""', ""]
    lines += [f"{name} = {value!r}" for name, value in knobs.items()]
    lines += ["", 'if __name__ == "__main__":', "    from objective import run", ""]
    lines += ["    run(globals())", ""]
    return "\n".join(lines)
