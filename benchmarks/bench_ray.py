"""13. The Ray backend: what a run on Ray costs over a local run, and 2 Ray slots vs 1.

A Ray head node is started on loopback for the benchmark (``ray start --head`` with 2 GPUs and
2 CPUs declared, its own temporary directory and HOME, free ports) and stopped at the end, so
the "cluster" is this machine: what is measured is Ray's own overhead (starting an actor,
shipping the code, streaming the log back), not a network.

The experiment sleeps (1 s; ``--nap``) and prints a metric, in a small git repository. Both
backends run it through their executor (``LocalExecutor`` and ``RayExecutor``, the objects the
worker hands each run to), so the numbers are the backend's alone:

- per-experiment overhead: N runs one after another on each backend; overhead = wall time of
  the run minus the nap, in ms; the ratio is the median Ray run's wall time over the median
  local one's;
- throughput: K runs on Ray one at a time, then K runs two at a time (two slots, each run
  asking for 1 GPU and 1 CPU); ``rate_2 / (2 x rate_1)``.

Targets: none are pass/fail here (the numbers depend on Ray's start-up of a worker process on
a loaded 2-core machine); the table says where the time goes.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from _common import make_repo, parser, ratio, summary, table, temp_dir, write_results

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Cluster:
    """A Ray head node on 127.0.0.1, for this benchmark only."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="arb-ray-"))
        (self.base / "home").mkdir()
        self.env = {
            **os.environ,
            "HOME": str(self.base / "home"),
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
            "RAY_USAGE_STATS_ENABLED": "0",
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p
            ),
        }
        self.ray = shutil.which("ray", path=os.path.dirname(sys.executable)) or "ray"
        self.address = ""

    def __enter__(self) -> Cluster:
        port = free_port()
        command = [
            self.ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
            "--num-gpus=2", "--num-cpus=2", f"--temp-dir={self.base / 'ray'}",
            "--include-dashboard=false", "--disable-usage-stats",
            f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}",
            f"--metrics-export-port={free_port()}", f"--runtime-env-agent-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
        ]  # fmt: skip
        subprocess.run(command, env=self.env, check=True, capture_output=True, timeout=180)
        self.address = f"127.0.0.1:{port}"
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # this process is the driver
        return self

    def __exit__(self, *exc: object) -> None:
        import ray

        ray.shutdown()
        subprocess.run(
            [self.ray, "stop", "--force"],
            env=self.env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        shutil.rmtree(self.base, ignore_errors=True)


async def one_run(executor: Any, repo: Path, log: Path, nap: float) -> float:
    """Wall time of one run in ms (it must succeed)."""
    from autoresearch.executor import RunRequest

    command = f"sleep {nap}; echo 'val_bpb: 1.000000'"
    start = time.perf_counter()
    outcome = await executor.run(RunRequest(command, cwd=repo, log_path=log, timeout_s=120))
    ms = (time.perf_counter() - start) * 1000
    text = await anyio.Path(log).read_text()
    if outcome.exit_code != 0 or "val_bpb" not in text:
        raise RuntimeError(f"a run failed: {outcome}")
    return ms


async def sequential(executor: Any, repo: Path, logs: Path, count: int, nap: float) -> list[float]:
    return [await one_run(executor, repo, logs / f"s{i}.log", nap) for i in range(count)]


async def concurrent(
    executor: Any, repo: Path, logs: Path, count: int, nap: float, width: int
) -> float:
    """Experiments per second running ``count`` runs ``width`` at a time."""
    limiter = anyio.CapacityLimiter(width)

    async def run(i: int) -> None:
        async with limiter:
            await one_run(executor, repo, logs / f"c{width}-{i}.log", nap)

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for i in range(count):
            tg.start_soon(run, i)
    return count / (time.perf_counter() - start)


async def measure(address: str, repo: Path, logs: Path, n: int, k: int, nap: float) -> dict:
    from autoresearch.config import RaySpec
    from autoresearch.executor import LocalExecutor
    from autoresearch.ray_executor import RayExecutor

    local = LocalExecutor()
    remote = RayExecutor(RaySpec(address=address, num_gpus=1, num_cpus=1))
    await remote.prepare()
    await one_run(remote, repo, logs / "warm.log", nap)  # the first worker process, the import
    local_ms = await sequential(local, repo, logs, n, nap)
    ray_ms = await sequential(remote, repo, logs, n, nap)
    rate_1 = await concurrent(remote, repo, logs, k, nap, 1)
    rate_2 = await concurrent(remote, repo, logs, k, nap, 2)
    nap_ms = nap * 1000
    local_s, ray_s = summary(local_ms), summary(ray_ms)
    return {
        "nap_s": nap,
        "local_wall_ms": local_s,
        "ray_wall_ms": ray_s,
        "local_overhead_ms": summary([ms - nap_ms for ms in local_ms]),
        "ray_overhead_ms": summary([ms - nap_ms for ms in ray_ms]),
        "ratio_median": ratio(ray_s["median"], local_s["median"]),
        "rate_1": rate_1,
        "rate_2": rate_2,
        "throughput_ratio": ratio(rate_2, 2 * rate_1),
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--nap", type=float, default=1.0, help="seconds each experiment sleeps")
    args = p.parse_args()
    n, k = (4, 4) if args.quick else (10, 10)
    with temp_dir("ray") as tmp, Cluster() as cluster:
        repo = make_repo(tmp / "repo", {"train.sh": "echo hi\n"})
        logs = tmp / "logs"
        logs.mkdir()
        data = anyio.run(measure, cluster.address, repo, logs, n, k, args.nap)
    print(
        table(
            "Per experiment (sequential)",
            ["backend", "runs", "wall median ms", "overhead median ms", "overhead p90 ms"],
            [
                [
                    name,
                    n,
                    data[f"{name}_wall_ms"]["median"],
                    data[f"{name}_overhead_ms"]["median"],
                    data[f"{name}_overhead_ms"]["p90"],
                ]
                for name in ("local", "ray")
            ],
        )
    )
    print(f"\nRay / local wall time per experiment: {data['ratio_median']:.2f}x\n")
    print(
        table(
            "Throughput on Ray",
            ["slots", "runs", "experiments/s"],
            [[1, k, data["rate_1"]], [2, k, data["rate_2"]]],
        )
    )
    print(f"\nrate_2 / (2 x rate_1) = {data['throughput_ratio']:.3f}")
    write_results("ray", {**data, "passed": None}, args)


if __name__ == "__main__":
    main()
