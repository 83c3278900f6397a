"""The Ray backend on a real Ray cluster: a head node on loopback, started once for the module.

The cluster claims 2 GPUs (Ray hands out their indices; no GPU is needed) and 2 CPUs. Its
processes get a temporary directory of their own, a HOME of their own (no stale token from
~/.ray is read) and free ports. The runs' nodes are this machine, so a test can look at the
processes a run started. Nothing here asserts a duration.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

from autoresearch import NeuroLink, ScriptedProposer
from autoresearch.config import RaySpec
from autoresearch.executor import RunRequest
from autoresearch.ray_executor import RayExecutor
from tests.conftest import PY, ROOT, Recorder, base_config, make_repo, snapshot
from tests.test_reliability import assert_invariants
from tests.test_slots import knob, overlapped
from tests.test_worker import runs

pytestmark = [pytest.mark.anyio, pytest.mark.ray]

# Candidates (not the baseline) wait for each other at a barrier (a folder named in the file:
# a run on a node sees the node's environment, not this process's): each one ends "together"
# only if the other was running at the same time.
TWO = """\
import os, pathlib, time
A = 3.0



B = 3.0
cycle = os.environ["AUTORESEARCH_CYCLE"]
print(f"cycle={cycle} gpus={os.environ.get('CUDA_VISIBLE_DEVICES')}", flush=True)
barrier = pathlib.Path(BARRIER)
if cycle != "1" and barrier.is_dir():
    (barrier / cycle).touch()
    for _ in range(600):
        if len(list(barrier.iterdir())) >= 2:
            print("together")
            break
        time.sleep(0.05)
print(f"val_bpb: {(A - 1) ** 2 + (B - 1) ** 2 + 1:.6f}")
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ray_cli() -> str:
    found = shutil.which("ray", path=os.path.dirname(sys.executable)) or shutil.which("ray")
    if found is None:
        pytest.fail("the ray command is missing; pip install -e '.[dev]' installs Ray")
    return found


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A Ray head node on 127.0.0.1 with 2 GPUs and 2 CPUs; yields its address."""
    base = Path(tempfile.mkdtemp(prefix="ar-ray-"))  # short: Ray's socket paths must fit
    home = base / "home"
    home.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    env.pop("RAY_ADDRESS", None)
    # This process is the driver: with the variable unset Ray would turn 127.0.0.1 into the
    # machine's outside address, where a head bound to loopback does not listen. Ray reads it
    # when it is imported.
    saved = os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    if "ray" in sys.modules:
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False
    port = _free_port()
    ray = _ray_cli()
    ports = {
        "--node-manager-port": _free_port(),
        "--object-manager-port": _free_port(),
        "--dashboard-agent-listen-port": _free_port(),
        "--dashboard-agent-grpc-port": _free_port(),
        "--metrics-export-port": _free_port(),
        "--runtime-env-agent-port": _free_port(),
    }
    command = [
        ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
        "--num-gpus=2", "--num-cpus=2", f"--temp-dir={base / 'ray'}",
        "--include-dashboard=false", "--disable-usage-stats",
        *(f"{flag}={value}" for flag, value in ports.items()),
    ]  # fmt: skip
    started = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    if started.returncode != 0:
        pytest.fail(f"ray start failed:\n{started.stdout}\n{started.stderr}")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        import ray as ray_module

        ray_module.shutdown()
        subprocess.run(
            [ray, "stop", "--force"], env=env, capture_output=True, timeout=120, check=False
        )
        shutil.rmtree(base, ignore_errors=True)
        if saved is None:
            os.environ.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
        else:
            os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = saved


def ray_settings(address: str, **extra: Any) -> dict[str, Any]:
    return {"address": address, "num_gpus": 1, "num_cpus": 1, **extra}


def two_repo(path: Path, *, barrier: bool = False) -> Path:
    """The test repository; with ``barrier``, its candidates wait for each other."""
    place = path.parent / f"{path.name}-barrier"
    if barrier:
        place.mkdir(parents=True)
    script = TWO.replace("BARRIER", repr(str(place)))
    return make_repo(path, {"train.py": script, "program.md": "p\n"})


@pytest.fixture
def two(tmp_path: Path) -> Path:
    return two_repo(tmp_path / "repo", barrier=True)


def _worker(repo: Path, steps: list[Any], recorder: Recorder | None = None, **extra: Any) -> Any:
    neurolink = NeuroLink()
    if recorder is not None:
        neurolink.get_event_emitter().on("*", recorder)
    return neurolink.create_research_worker(
        base_config(repo, **extra), proposer=ScriptedProposer(steps)
    )


async def test_two_slots_run_at_once_on_the_cluster_each_with_its_own_gpu(
    ray_cluster: str, two: Path, recorder: Recorder
) -> None:
    w = _worker(
        two,
        [knob("A", 2.0), knob("B", 2.0)],
        recorder,
        slots=2,
        backend="ray",
        ray=ray_settings(ray_cluster),
    )
    results = await w.run(max_cycles=3)
    await w.aclose()
    assert sorted(r.cycle for r in results) == [1, 2, 3]
    # Both candidates beat the baseline; the second decision finds the best moved on (as with
    # local slots), so one is kept and the other discarded and replayed later.
    assert sorted(r.status for r in results) == ["discard", "keep", "keep"]
    assert overlapped(recorder, 2, 3)
    gpus = set()
    for cycle in (2, 3):
        log = (two / ".autoresearch" / "logs" / f"{cycle}.log").read_text()
        assert "together" in log  # the other candidate ran at the same time
        gpus.add(log.split("gpus=")[1].split()[0])
    assert gpus == {"0", "1"}  # each run got a GPU of its own from Ray
    record = json.loads((two / ".autoresearch" / "ray-runs.json").read_text())
    assert record["actors"] == []  # nothing left in flight
    assert_invariants(two)


def _shape(repo: Path) -> list[tuple[int, str, list[str]]]:
    return [(r["cycle"], r["status"], sorted(r)) for r in runs(repo)]


async def test_the_ledger_has_the_same_shape_as_a_local_runs(
    ray_cluster: str, tmp_path: Path
) -> None:
    shapes = []
    headers = []
    for backend in ("local", "ray"):
        repo = two_repo(tmp_path / backend)
        extra: dict[str, Any] = {"backend": backend}
        if backend == "ray":
            extra["ray"] = ray_settings(ray_cluster, num_gpus=0)
        w = _worker(repo, [knob("A", 2.0)], **extra)
        await w.run(max_cycles=2)
        await w.aclose()
        shapes.append(_shape(repo))
        headers.append((repo / ".autoresearch" / "results.tsv").read_text().splitlines()[0])
        assert_invariants(repo)
    assert shapes[0] == shapes[1]
    assert [status for _, status, _ in shapes[1]] == ["keep", "keep"]
    assert headers[0] == headers[1]


def _tree_script(pids: Path) -> str:
    """A run that starts a child, a grandchild that left the session, and sleeps."""
    return (
        f"{PY} -c \"import os, subprocess, sys, time; "
        f"a = subprocess.Popen(['sleep', '300']); "
        f"b = subprocess.Popen(['setsid', 'sleep', '300']); "
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{a.pid}} {{b.pid}}'); "
        f"print('started', flush=True); time.sleep(300)\""
    )


def _scratch() -> set[str]:
    """The run directories on the node (this machine): each run's is removed after it."""
    return {p.name for p in Path(tempfile.gettempdir()).glob("autoresearch-run-*")}


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie does not: it waits for whoever adopted it to reap
    it, and this machine's init may take its time)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _all_gone(pids: Path) -> bool:
    return not any(_alive(int(pid)) for pid in pids.read_text().split())


async def test_a_timeout_kills_the_whole_remote_tree(ray_cluster: str, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    seen: list[int] = []

    async def on_timeout(elapsed_ms: int) -> None:
        seen.append(elapsed_ms)

    executor = RayExecutor(
        RaySpec(address=ray_cluster, num_gpus=0), record_path=tmp_path / "ray.json"
    )
    repo = make_repo(tmp_path / "repo", {"x.txt": "x\n"})
    before = _scratch()
    outcome = await executor.run(
        RunRequest(
            _tree_script(pids),
            cwd=repo,
            log_path=tmp_path / "run.log",
            timeout_s=2.0,
            kill_grace_s=0.5,
            on_timeout=on_timeout,
        )
    )
    assert outcome.timed_out and outcome.exit_code is None and outcome.error is None
    assert len(seen) == 1
    assert "started" in (tmp_path / "run.log").read_text()  # streamed back to this machine
    assert _all_gone(pids)
    assert json.loads((tmp_path / "ray.json").read_text())["actors"] == []
    assert _scratch() <= before


async def test_cancelling_mid_run_stops_the_remote_run_and_its_actor(
    ray_cluster: str, tmp_path: Path
) -> None:
    import ray

    pids = tmp_path / "pids"
    log = tmp_path / "run.log"
    repo = make_repo(tmp_path / "repo", {"x.txt": "x\n"})
    executor = RayExecutor(
        RaySpec(address=ray_cluster, num_gpus=0), record_path=tmp_path / "ray.json"
    )
    names: list[str] = []
    async with anyio.create_task_group() as tg:
        request = RunRequest(
            _tree_script(pids), cwd=repo, log_path=log, timeout_s=300, kill_grace_s=1.0
        )
        tg.start_soon(executor.run, request)
        # The output reaches this machine's log while the run goes on.
        with anyio.fail_after(90):
            while not (log.exists() and "started" in log.read_text()):
                await anyio.sleep(0.1)
        names = json.loads((tmp_path / "ray.json").read_text())["actors"]
        tg.cancel_scope.cancel()
    assert len(names) == 1
    assert _all_gone(pids)
    assert json.loads((tmp_path / "ray.json").read_text())["actors"] == []
    with pytest.raises(ValueError):
        ray.get_actor(names[0], namespace="autoresearch")


async def test_a_run_no_node_can_take_is_a_warning_not_an_error(
    ray_cluster: str, caplog: pytest.LogCaptureFixture
) -> None:
    executor = RayExecutor(RaySpec(address=ray_cluster, num_gpus=3))
    with caplog.at_level("WARNING", logger="autoresearch"):
        await executor.prepare()  # an autoscaler could still add a node with 3 GPUs
    [record] = [r for r in caplog.records if "no node of the cluster" in r.getMessage()]
    assert ray_cluster in record.getMessage() and "3 GPU" in record.getMessage()


async def test_an_abort_stops_the_remote_run_early(ray_cluster: str, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    log = tmp_path / "run.log"
    repo = make_repo(tmp_path / "repo", {"x.txt": "x\n"})
    executor = RayExecutor(RaySpec(address=ray_cluster, num_gpus=0))
    abort = anyio.Event()

    async def abort_when_started() -> None:
        with anyio.fail_after(90):
            while not (log.exists() and "started" in log.read_text()):
                await anyio.sleep(0.1)
        abort.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(abort_when_started)
        outcome = await executor.run(
            RunRequest(
                _tree_script(pids), cwd=repo, log_path=log, timeout_s=300, kill_grace_s=1.0,
                abort=abort,
            )
        )  # fmt: skip
    assert outcome.aborted and not outcome.timed_out and outcome.exit_code is None
    assert _all_gone(pids)


async def test_a_lost_worker_gets_one_retry(ray_cluster: str, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"x.txt": "x\n"})
    before = _scratch()
    flag = tmp_path / "lost-once"
    # The shell's parent is the actor's process: the first try kills it, the second passes.
    command = f"if [ ! -e {flag} ]; then touch {flag}; kill -9 $PPID; sleep 60; fi; echo done"
    executor = RayExecutor(RaySpec(address=ray_cluster, num_gpus=0))
    outcome = await executor.run(
        RunRequest(command, cwd=repo, log_path=tmp_path / "run.log", timeout_s=60)
    )
    assert outcome.exit_code == 0 and outcome.error is None
    assert (tmp_path / "run.log").read_text() == "done\n"
    # The lost try's directory is removed by its watchdog, maybe a moment after the retry.
    with anyio.fail_after(30):
        while _scratch() - before:
            await anyio.sleep(0.1)


async def test_a_worker_lost_twice_is_one_crash_and_the_loop_goes_on(
    ray_cluster: str, tmp_path: Path
) -> None:
    repo = two_repo(tmp_path / "repo")
    w = _worker(
        repo,
        [knob("A", 2.0)],
        backend="ray",
        ray=ray_settings(ray_cluster, num_gpus=0),
        runCommand=f'if [ "$AUTORESEARCH_CYCLE" = 1 ]; then kill -9 $PPID; fi; {PY} train.py',
    )
    results = await w.run(max_cycles=2)
    await w.aclose()
    records = runs(repo)
    assert [r["cycle"] for r in records] == [1, 2]  # one row per cycle
    assert records[0]["status"] == "crash"
    assert "(node lost: " in str(records[0]["description"])
    assert [r.status for r in results] == ["crash", "keep"]
    assert_invariants(repo)


LOCAL_INSTANCE = """\
import sys
from pathlib import Path

import anyio

from autoresearch.config import RaySpec
from autoresearch.executor import RunRequest
from autoresearch.ray_executor import RayExecutor


async def main() -> None:
    repo, log = Path(sys.argv[1]), Path(sys.argv[2])
    # One GPU, as gpus_per_slot asks by default: a local instance without a GPU runs with none
    # instead of waiting for ever for a GPU this machine will never have.
    executor = RayExecutor(RaySpec(num_gpus=1))
    await executor.prepare()
    await anyio.sleep(1)  # the Ray instance must outlive the thread that started it
    outcome = await executor.run(RunRequest("echo hello", cwd=repo, log_path=log, timeout_s=60))
    print(outcome.exit_code, outcome.error)


anyio.run(main)
"""


def test_without_an_address_a_ray_instance_lives_as_long_as_the_engine(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"x.txt": "x\n"})
    scratch = Path(tempfile.mkdtemp(prefix="ar-ray-"))  # short: Ray's socket paths must fit
    (tmp_path / "home").mkdir()
    script = tmp_path / "engine.py"
    script.write_text(LOCAL_INSTANCE)
    env = {**os.environ, "HOME": str(tmp_path / "home"), "RAY_TMPDIR": str(scratch)}
    env.update(RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=str(ROOT))
    env.pop("RAY_ADDRESS", None)
    try:
        done = subprocess.run(
            [PY, str(script), str(repo), str(tmp_path / "run.log")],
            env=env, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.split() == ["0", "None"]
        assert (tmp_path / "run.log").read_text() == "hello\n"
        # The instance goes with the engine's process (its processes get the parent-death
        # signal; give them a moment to be gone).
        for _ in range(300):
            left = [
                p.pid
                for p in psutil.process_iter(["cmdline"])
                if str(scratch) in " ".join(p.info["cmdline"] or [])
            ]
            if not left:
                break
            time.sleep(0.1)
        assert left == []
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# -- without a cluster: settings, the command line, and the one-line errors ---------------------


def test_ray_settings_take_both_spellings_and_refuse_local_gpu_indices(tmp_path: Path) -> None:
    from autoresearch.config import load_config
    from autoresearch.errors import ConfigError

    repo = two_repo(tmp_path / "repo")
    config = load_config(
        base_config(repo, backend="ray", ray={"numGpus": 2, "sharedPath": "/mnt/shared"})
    )
    assert config.ray is not None and config.ray.num_gpus == 2
    assert config.ray_spec.shared_path == "/mnt/shared"
    # Not given: each run asks for gpus_per_slot GPUs.
    assert load_config(base_config(repo, backend="ray", gpusPerSlot=3)).ray_spec.num_gpus == 3
    with pytest.raises(ConfigError) as bad:
        load_config(base_config(repo, backend="ray", gpus=[0, 1]))
    assert bad.value.field == "gpus"
    assert "Ray assigns the GPUs" in str(bad.value)
    with pytest.raises(ConfigError) as bad:
        load_config(base_config(repo, backend="ray", ray={"sharedPath": "relative/dir"}))
    assert "absolute" in str(bad.value)
    # The sandbox names the repository's path, which only shared storage has on every node.
    with pytest.raises(ConfigError) as bad:
        load_config(base_config(repo, backend="ray", sandbox="bwrap"))
    assert bad.value.field == "sandbox" and "ray.shared_path" in str(bad.value)


def _cli(repo: Path, *args: str, pythonpath: str = "") -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(p for p in (pythonpath, str(ROOT)) if p)
    return subprocess.run(
        [sys.executable, "-m", "autoresearch", *args],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": path, "RAY_ADDRESS": ""},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


INIT = ["init", "--target", "train.py", "--run-command", f"{PY} train.py"]
INIT += ["--metric-name", "val_bpb", "--tag", "t1"]


def test_the_cli_saves_the_backend_and_an_unreachable_cluster_is_one_line(
    tmp_path: Path,
) -> None:
    repo = two_repo(tmp_path / "repo")
    done = _cli(repo, *INIT)
    assert done.returncode == 0, done.stderr
    closed = f"127.0.0.1:{_free_port()}"
    before = (repo / ".autoresearch" / "config.json").read_text()
    ran = _cli(repo, "run", "--max-runs", "1", "--ray-address", closed)
    assert ran.returncode == 2
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in ran.stderr
    assert f"could not connect to the Ray cluster at {closed}" in lines[0]
    assert (repo / ".autoresearch" / "config.json").read_text() == before
    assert not (repo / ".autoresearch" / "runs.jsonl").exists()
    bad = _cli(repo, "run", "--backend", "local", "--ray-address", closed)
    assert bad.returncode == 2 and "--ray-address is for --backend ray" in bad.stderr


def test_without_ray_installed_the_ray_backend_is_one_line_saying_how_to_install_it(
    tmp_path: Path,
) -> None:
    fake = tmp_path / "fake"
    (fake / "ray").mkdir(parents=True)
    (fake / "ray" / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    repo = two_repo(tmp_path / "repo")
    before = snapshot(repo)
    done = _cli(repo, *INIT, "--backend", "ray", pythonpath=str(fake))
    assert snapshot(repo) == before
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert "pip install 'autoresearch[ray]'" in lines[0]


async def test_without_ray_the_sdk_raises_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from autoresearch.errors import ConfigError

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    repo = two_repo(tmp_path / "repo")
    w = _worker(repo, [], backend="ray")
    with pytest.raises(ConfigError) as bad:
        await w.run(max_cycles=1)
    await w.aclose()
    assert bad.value.field == "backend"
    assert "pip install 'autoresearch[ray]'" in str(bad.value)
    assert not (repo / ".autoresearch" / "runs.jsonl").exists()


async def test_the_first_run_kills_the_actors_a_killed_engine_left(
    ray_cluster: str, tmp_path: Path
) -> None:
    import ray

    from autoresearch.ray_executor import NAMESPACE, _RunHost

    executor = RayExecutor(
        RaySpec(address=ray_cluster, num_gpus=0), record_path=tmp_path / "ray.json"
    )
    await executor.prepare()
    left = ray.remote(_RunHost).options(name="run-left-behind", namespace=NAMESPACE).remote()
    await anyio.to_thread.run_sync(lambda: ray.get(left.finished.remote()))  # it is up
    (tmp_path / "ray.json").write_text(json.dumps({"actors": ["run-left-behind"]}))
    repo = make_repo(tmp_path / "repo", {"x.txt": "x\n"})
    outcome = await executor.run(
        RunRequest("echo fine", cwd=repo, log_path=tmp_path / "run.log", timeout_s=60)
    )
    assert outcome.exit_code == 0
    with pytest.raises(ValueError):
        ray.get_actor("run-left-behind", namespace=NAMESPACE)
    assert json.loads((tmp_path / "ray.json").read_text())["actors"] == []


SLEEPER = """\
import os, pathlib, sys, time
X = 3.0
if os.environ["AUTORESEARCH_CYCLE"] == "1":
    pathlib.Path(PIDFILE).write_text(str(os.getpid()))
    time.sleep(300)
print(f"val_bpb: {(X - 1) ** 2 + 1:.6f}")
"""


def test_kill_9_of_the_engine_mid_run_leaves_nothing_on_the_cluster(
    ray_cluster: str, tmp_path: Path
) -> None:
    pidfile = tmp_path / "experiment.pid"
    script = SLEEPER.replace("PIDFILE", repr(str(pidfile)))
    repo = make_repo(tmp_path / "repo", {"train.py": script, "program.md": "p\n"})
    before = _scratch()
    done = _cli(repo, *INIT, "--timeout", "600", "--ray-address", ray_cluster)
    assert done.returncode == 0, done.stderr
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    engine = subprocess.Popen(
        [sys.executable, "-m", "autoresearch", "run", "--max-runs", "1", "-q"],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": path},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pidfile.exists(), "the experiment never started on the cluster"
        recorded = json.loads((repo / ".autoresearch" / "ray-runs.json").read_text())
        assert len(recorded["actors"]) == 1
    finally:
        engine.kill()
        engine.wait()
    experiment = int(pidfile.read_text())
    deadline = time.monotonic() + 60
    while _alive(experiment) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(experiment)  # the run died with its engine
    while _scratch() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _scratch() - before  # and its directory on the node went too
    again = _cli(repo, "run", "--max-runs", "1", "-q")
    assert again.returncode == 0, again.stderr
    records = runs(repo)
    assert [r["cycle"] for r in records] == [1, 2]  # the killed cycle recorded once
    assert records[0]["status"] == "crash" and "interrupted" in str(records[0]["description"])
    assert records[1]["status"] == "keep"
    assert json.loads((repo / ".autoresearch" / "ray-runs.json").read_text())["actors"] == []
    assert_invariants(repo)
