"""Experiments on a Ray cluster: the :class:`RayExecutor` (``backend="ray"``, the ``ray`` extra).

Only the run leaves this machine. The engine (proposing, committing, the ledger, decisions)
stays with the repository; each run becomes one Ray actor that asks the cluster for the
configured GPUs, CPUs, memory and custom resources. On its node the actor runs the command
exactly as :class:`~autoresearch.executor.LocalExecutor` does here, through
:func:`~autoresearch.runner.run_experiment`: its own process group, the same environment
(``AUTORESEARCH_*``, and ``CUDA_VISIBLE_DEVICES`` as Ray assigned it), the time limit and the
kill grace enforced on the node, and the whole process tree killed at the end.

How the code gets there: the candidate's tracked files (HEAD of its checkout, as on disk) are
packed into one archive, handed to the actor through Ray's object store and unpacked into a
directory of the run's own on the node, removed afterwards. With ``ray.shared_path`` (storage
every node mounts at the same path) and the repository inside it, nothing is shipped: the run
works in the checkout itself.

While the run goes on, the driver asks the actor for the new part of the node's log a few
times a second and appends it to the cycle's log here (at most :data:`CHUNK_BYTES` at a time,
so memory stays bounded); the metric is then read from that log as for a local run.

Faults: when the actor dies mid-run (its node went away, or its worker process was killed),
the run is started once more; if that one is lost too, the outcome carries the error
``node lost: ...`` and the cycle is recorded as a crash, once. On the node a small watchdog
process kills the run's processes if the actor dies without cleaning up. The names of the
actors in flight are kept in a file under ``.autoresearch/`` so that the next start kills
whatever a driver that was killed outright left running.

Every Ray call blocks, so each goes through a worker thread with a short timeout; the event
loop is never blocked and cancellation is seen within a poll interval.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any, BinaryIO

import anyio
import anyio.to_thread
import psutil

from autoresearch.config import RaySpec
from autoresearch.errors import AutoResearchError, ConfigError
from autoresearch.executor import RunRequest
from autoresearch.runner import RunOutcome, _read_log, run_experiment

__all__ = ["CHUNK_BYTES", "MAX_UPLOAD_BYTES", "RayExecutor", "import_ray"]

logger = logging.getLogger("autoresearch")

CHUNK_BYTES = 1 << 20
"""The most log bytes one poll brings back from a node."""
MAX_UPLOAD_BYTES = 256 * 1024**2
"""The largest archive of tracked files a run ships; larger repositories use ``shared_path``."""
NAMESPACE = "autoresearch"
"""The Ray namespace of the run actors (their names are recorded for orphan cleanup)."""

_POLL_S = 0.25
_READ_TIMEOUT_S = 30.0  # one fetch of new log bytes from a node
_CONNECT_TIMEOUT_S = 5.0  # the TCP probe of the head's address
_INIT_TIMEOUT_S = 60.0  # ray.init as a whole
_KILL_WAIT_S = 5.0  # for a killed actor to be gone
_HOLD = threading.Event()  # never set: what the connecting thread waits on (see _connect_in_time)
_CLEANUP_MARGIN_S = 10.0  # on top of the kill grace, for the node to stop and report
_MARKER_ENV = "AUTORESEARCH_RAY_RUN"  # every process of a remote run carries it
_LOG_TAIL_BYTES = 64 * 1024
_INSTALL_HINT = "pip install 'autoresearch[ray]'"


def import_ray() -> ModuleType:
    """The ``ray`` module, or a :class:`ConfigError` saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(
            f"backend: the ray backend needs Ray, which is not installed; {_INSTALL_HINT}",
            field="backend",
        ) from exc
    return ray


@dataclass(frozen=True)
class _Report:
    """What a node says about its run (plain values: it crosses the wire)."""

    exit_code: int | None
    timed_out: bool
    aborted: bool
    duration_ms: int
    elapsed_at_kill_ms: int | None
    peak_rss_gb: float | None
    error: str | None


class _NodeLost(Exception):
    """The actor running a run died with it (its node, or its worker process)."""


class RayExecutor:
    """Runs each experiment as a Ray actor on a cluster (see the module docstring).

    ``spec`` says where the cluster is and what a run asks for; ``repo_path`` is the
    repository (checked against ``spec.shared_path``); ``record_path`` is the file that lists
    the actors in flight, so that :meth:`prepare` of a later engine can kill what a killed
    one left behind. :meth:`prepare` connects; :meth:`run` connects first if needed.
    """

    def __init__(
        self,
        spec: RaySpec,
        *,
        repo_path: Path | None = None,
        record_path: Path | None = None,
    ) -> None:
        self.spec = spec
        self.repo_path = repo_path
        self.record_path = record_path
        self._ray: ModuleType | None = None
        self._host_class: Any = None
        self._live: set[str] = set()
        self._orphans_checked = False
        self._record_lock = anyio.Lock()
        self._connect_lock = anyio.Lock()

    # -- connecting ------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Connect to the cluster and check that a run fits on it (writes nothing).

        Raises :class:`ConfigError` when Ray is not installed, when the cluster cannot be
        reached (the message names the address), or when ``shared_path`` is set but does not
        hold the repository. When no node has what a run asks for, a warning says so (an
        autoscaler may still add one).
        """
        async with self._connect_lock:
            if self._ray is None:
                ray = import_ray()
                self._check_shared()
                await anyio.to_thread.run_sync(self._connect_in_time, ray)
                self._host_class = ray.remote(_RunHost)
                self._ray = ray

    def _check_shared(self) -> None:
        shared = self.spec.shared_path
        if shared is None or self.repo_path is None:
            return
        if not _inside(self.repo_path, Path(shared)):
            raise ConfigError(
                f"ray.shared_path: the repository {self.repo_path} is not inside {shared}; "
                "put the repository on the shared storage or leave shared_path out",
                field="ray.shared_path",
            )

    def _connect_in_time(self, ray: Any) -> None:
        """:meth:`_connect` with a deadline: Ray can wait for ever on a head it cannot reach.

        The connection is made in a daemon thread of its own, so that one that hangs is left
        behind (it ends with the process) instead of holding the engine. The thread then
        stays for the life of the process (see ``connect`` below).
        """
        done = threading.Event()
        failure: list[BaseException] = []

        def connect() -> None:
            try:
                self._connect(ray)
            except BaseException as exc:
                failure.append(exc)
                return
            finally:
                done.set()
            # A Ray instance started here (no address) has its processes die with the thread
            # that started them (Linux's parent-death signal is per thread), so the thread
            # stays; being a daemon, it ends with the process, and so do they.
            _HOLD.wait()

        threading.Thread(target=connect, name="autoresearch-ray-connect", daemon=True).start()
        if not done.wait(_INIT_TIMEOUT_S):
            shown = self.spec.address or os.environ.get("RAY_ADDRESS") or "a local Ray instance"
            raise ConfigError(
                f"ray.address: no answer from the Ray cluster at {shown} within "
                f"{_INIT_TIMEOUT_S:g} s (is the address the one `ray start` printed?)",
                field="ray.address",
            )
        if failure:
            raise failure[0]

    def _connect(self, ray: Any) -> None:
        address = self.spec.address
        shown = address or os.environ.get("RAY_ADDRESS") or "a local Ray instance"
        problem = _unreachable(address or os.environ.get("RAY_ADDRESS"))
        if problem is not None:
            raise ConfigError(
                f"ray.address: could not connect to the Ray cluster at {shown}: {problem}",
                field="ray.address",
            )
        if ray.is_initialized():
            ray.shutdown()  # another address or namespace: connect afresh
        try:
            ray.init(
                address=address,
                namespace=NAMESPACE,
                log_to_driver=False,
                logging_level=logging.ERROR,
            )
            ray.cluster_resources()  # a first call that needs the cluster to answer
        except Exception as exc:
            with contextlib.suppress(Exception):
                ray.shutdown()
            raise ConfigError(
                f"ray.address: could not connect to the Ray cluster at {shown}: "
                f"{_first_line(exc)}",
                field="ray.address",
            ) from exc
        self._check_fit(ray, shown)

    def _check_fit(self, ray: Any, shown: str) -> None:
        """Warn when no node has what a run asks for: runs then wait for one to join.

        Not an error: an autoscaling cluster (``ray up`` with no workers yet) adds the nodes
        when runs ask for them. On a fixed cluster the warning is the hint to ask for less.
        """
        try:
            nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        except Exception:  # an older or a client-mode API: nothing to check against
            return
        local = not (self.spec.address or os.environ.get("RAY_ADDRESS"))
        if local and self.spec.num_gpus and not any(node.get("GPU", 0.0) for node in nodes):
            # A Ray instance started here is this machine: it will never have a GPU, so a run
            # that asked for one would wait for ever. Ask for none.
            logger.info("ray: this machine has no GPU; runs on the local Ray instance ask for none")
            self.spec = self.spec.model_copy(update={"num_gpus": 0.0})
        wanted = {"GPU": self.spec.num_gpus or 0.0, "CPU": self.spec.num_cpus}
        wanted.update(self.spec.resources)
        wanted = {name: amount for name, amount in wanted.items() if amount > 0}
        if any(all(node.get(k, 0.0) >= v for k, v in wanted.items()) for node in nodes):
            return
        asked = ", ".join(f"{amount:g} {name}" for name, amount in wanted.items())
        logger.warning(
            "ray: no node of the cluster at %s has what a run asks for (%s); runs wait until "
            "one joins (an autoscaler adds it), or ask for less (ray.num_gpus 0 on a cluster "
            "without GPUs)",
            shown,
            asked,
        )

    # -- one run ---------------------------------------------------------------------------

    async def run(self, request: RunRequest) -> RunOutcome:
        """Run ``request`` on the cluster; a lost node gets the run one more try.

        The first run also kills what an engine killed outright left running (the runs are
        started by the process that holds the repository, so those are nobody's).
        """
        await self.prepare()
        if not self._orphans_checked:
            self._orphans_checked = True
            await self._kill_orphans()
        archive = None
        if not self._shared(request.cwd):
            try:
                archive = await _pack(request.cwd)
            except (OSError, ValueError, AutoResearchError) as exc:
                return _failed(f"could not ship the code to the cluster: {exc}")
        started = time.monotonic()
        lost = ""
        for attempt in (1, 2):
            try:
                return await self._attempt(request, archive)
            except _NodeLost as exc:
                lost = str(exc)
                if attempt == 1:
                    logger.warning(
                        "run in %s lost its Ray worker (%s); trying once more", request.cwd, lost
                    )
        return _failed(f"node lost: {lost}", duration_ms=_ms_since(started))

    def _shared(self, cwd: Path) -> bool:
        shared = self.spec.shared_path
        return shared is not None and _inside(cwd, Path(shared))

    async def _attempt(self, request: RunRequest, archive: bytes | None) -> RunOutcome:
        ray = self._ray
        assert ray is not None
        name = f"run-{uuid.uuid4().hex}"
        env = {k: v for k, v in request.env.items() if k != "CUDA_VISIBLE_DEVICES"}
        env[_MARKER_ENV] = name
        options: dict[str, Any] = {
            "name": name,
            "num_gpus": self.spec.num_gpus or 0,
            "num_cpus": self.spec.num_cpus,
            "resources": dict(self.spec.resources),
            "max_restarts": 0,
            "max_concurrency": 8,
        }
        if self.spec.memory is not None:
            options["memory"] = self.spec.memory
        sink = await anyio.to_thread.run_sync(_open_sink, request.log_path)
        await self._remember(name)
        host: Any = None
        ended = False  # the run reported its end: the actor has nothing left to do
        try:
            with anyio.CancelScope(shield=True):
                host, result = await anyio.to_thread.run_sync(
                    self._launch,
                    options,
                    archive,
                    {
                        "command": request.command,
                        "cwd": None if archive is not None else str(request.cwd),
                        "env": env,
                        "timeout_s": request.timeout_s,
                        "kill_grace_s": request.kill_grace_s,
                    },
                )
            report = await self._follow(request, host, result, sink)
            ended = True
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._stop(request, host, sink)
            raise
        finally:
            with anyio.move_on_after(_CLEANUP_MARGIN_S + _KILL_WAIT_S, shield=True):
                await anyio.to_thread.run_sync(sink.close)
                if host is not None:
                    await anyio.to_thread.run_sync(self._call, host.close)
                    # After a cancellation or a fault, wait until Ray has let the actor go.
                    gone = None if ended else name
                    await anyio.to_thread.run_sync(_kill_quietly, ray, host, gone)
                await self._forget(name)
        size, tail, disk_full, error = await anyio.to_thread.run_sync(
            _read_log, request.log_path, _LOG_TAIL_BYTES
        )
        return RunOutcome(
            exit_code=report.exit_code,
            timed_out=report.timed_out,
            aborted=report.aborted,
            duration_ms=report.duration_ms,
            elapsed_at_kill_ms=report.elapsed_at_kill_ms,
            peak_rss_gb=report.peak_rss_gb,
            output_bytes=size,
            tail=tail,
            error=report.error or error,
            disk_full=disk_full,
        )

    def _launch(
        self, options: dict[str, Any], archive: bytes | None, run: dict[str, Any]
    ) -> tuple[Any, Any]:
        """Start the actor and its run (the archive goes through the object store)."""
        ray = self._ray
        assert ray is not None
        shipped = ray.put(archive) if archive is not None else None
        host = self._host_class.options(**options).remote()
        return host, host.run.remote(archive=shipped, **run)

    async def _follow(
        self, request: RunRequest, host: Any, result: Any, sink: BinaryIO
    ) -> _Report:
        """Stream the node's log into ``sink`` until the run ends; pass on timeout and abort."""
        offset, stopping, told = 0, False, False
        while True:
            done, chunk, timed_out_ms = await anyio.to_thread.run_sync(
                self._poll, host, result, offset, abandon_on_cancel=True
            )
            if chunk:
                await anyio.to_thread.run_sync(sink.write, chunk)
                offset += len(chunk)
            if timed_out_ms is not None and not told:
                told = True
                if request.on_timeout is not None:
                    with anyio.move_on_after(request.kill_grace_s):
                        try:
                            await request.on_timeout(timed_out_ms)
                        except Exception:
                            logger.exception("on_timeout callback failed")
            if done and len(chunk) < CHUNK_BYTES:
                break
            if request.abort is not None and request.abort.is_set() and not stopping:
                stopping = True
                await anyio.to_thread.run_sync(self._call, host.stop)
        return await anyio.to_thread.run_sync(self._result, result)

    def _poll(self, host: Any, result: Any, offset: int) -> tuple[bool, bytes, int | None]:
        ray = self._ray
        assert ray is not None
        ready, _ = ray.wait([result], timeout=_POLL_S)
        try:
            chunk, timed_out_ms = ray.get(
                host.read.remote(offset, CHUNK_BYTES), timeout=_READ_TIMEOUT_S
            )
        except ray.exceptions.GetTimeoutError:
            return False, b"", None  # a slow node: ask again
        except ray.exceptions.RayActorError as exc:
            if ready:  # the run has finished and said how; the result tells
                return True, b"", None
            raise _NodeLost(_first_line(exc)) from exc
        return bool(ready), chunk, timed_out_ms

    def _result(self, result: Any) -> _Report:
        ray = self._ray
        assert ray is not None
        try:
            return _Report(**ray.get(result))
        except ray.exceptions.RayActorError as exc:
            raise _NodeLost(_first_line(exc)) from exc
        except ray.exceptions.RayTaskError as exc:  # the node could not set the run up
            cause = exc.cause if isinstance(exc.cause, BaseException) else exc
            return _Report(
                exit_code=None,
                timed_out=False,
                aborted=False,
                duration_ms=0,
                elapsed_at_kill_ms=None,
                peak_rss_gb=None,
                error=f"the run failed on its Ray node: {_first_line(cause)}",
            )

    def _call(self, method: Any) -> None:
        ray = self._ray
        assert ray is not None
        with contextlib.suppress(ray.exceptions.RayError):
            ray.get(method.remote(), timeout=5.0)

    async def _stop(self, request: RunRequest, host: Any, sink: BinaryIO) -> None:
        """Stop the run on its node (SIGTERM, grace, SIGKILL there) under a deadline."""
        if host is None:
            return
        ray = self._ray
        assert ray is not None
        with anyio.move_on_after(request.kill_grace_s + _CLEANUP_MARGIN_S):
            await anyio.to_thread.run_sync(self._call, host.stop)
            offset = await anyio.to_thread.run_sync(sink.tell)
            finished = host.finished.remote()
            while True:  # until the node says the run is over (or the deadline passes)
                try:
                    done, chunk, _ = await anyio.to_thread.run_sync(
                        self._poll, host, finished, offset, abandon_on_cancel=True
                    )
                except (_NodeLost, ray.exceptions.RayError):
                    return
                if chunk:
                    await anyio.to_thread.run_sync(sink.write, chunk)
                    offset += len(chunk)
                if done and len(chunk) < CHUNK_BYTES:
                    return

    # -- the record of actors in flight ---------------------------------------------------------

    async def _remember(self, name: str) -> None:
        async with self._record_lock:
            self._live.add(name)
            await self._write_record()

    async def _forget(self, name: str) -> None:
        async with self._record_lock:
            self._live.discard(name)
            await self._write_record()

    async def _write_record(self) -> None:
        path = self.record_path
        if path is None:
            return
        text = json.dumps({"namespace": NAMESPACE, "actors": sorted(self._live)}, indent=2)
        await anyio.to_thread.run_sync(_write_atomic, path, text)

    async def _kill_orphans(self) -> None:
        """Kill the actors a previous engine recorded and did not see finish."""
        path = self.record_path
        if path is None:
            return
        names = await anyio.to_thread.run_sync(_read_record, path)
        orphans = [name for name in names if name not in self._live]
        if not orphans:
            return
        ray = self._ray
        assert ray is not None
        killed = await anyio.to_thread.run_sync(_kill_named, ray, orphans)
        if killed:
            logger.warning("killed %d Ray run(s) a previous engine left running", killed)
        async with self._record_lock:
            await self._write_record()


# -- on the node -------------------------------------------------------------------------------


class _RunHost:
    """The Ray actor that runs one experiment on its node (async: its calls overlap)."""

    def __init__(self) -> None:
        # Made when the run starts (with the watchdog that removes it if this process dies).
        self._dir = Path(tempfile.gettempdir()) / f"autoresearch-run-{uuid.uuid4().hex}"
        self._log = self._dir / "run.log"
        self._abort: anyio.Event | None = None
        self._stopped = False
        self._timed_out_ms: int | None = None
        self._finished: anyio.Event | None = None
        self._watchdog: psutil.Process | None = None

    async def run(
        self,
        *,
        command: str,
        cwd: str | None,
        archive: bytes | None,
        env: dict[str, str],
        timeout_s: float,
        kill_grace_s: float,
    ) -> dict[str, Any]:
        """Run the command here as a local run does; return the report as a dict."""
        self._abort = anyio.Event()
        self._finished = anyio.Event()
        if self._stopped:
            self._abort.set()
        try:
            self._dir.mkdir(mode=0o700)
            self._watchdog = await anyio.to_thread.run_sync(
                _start_watchdog, env[_MARKER_ENV], self._dir
            )
            where = Path(cwd) if cwd is not None else self._dir / "tree"
            if archive is not None:
                await anyio.to_thread.run_sync(_unpack, archive, where)

            async def on_timeout(elapsed_ms: int) -> None:
                self._timed_out_ms = elapsed_ms

            outcome = await run_experiment(
                command,
                cwd=where,
                log_path=self._log,
                timeout_s=timeout_s,
                kill_grace_s=kill_grace_s,
                env=env,
                on_timeout=on_timeout,
                abort=self._abort,
                tail_bytes=0,
            )
            report = _Report(
                exit_code=outcome.exit_code,
                timed_out=outcome.timed_out,
                aborted=outcome.aborted,
                duration_ms=outcome.duration_ms,
                elapsed_at_kill_ms=outcome.elapsed_at_kill_ms,
                peak_rss_gb=outcome.peak_rss_gb,
                error=outcome.error,
            )
            return asdict(report)
        finally:
            shutil.rmtree(self._dir / "tree", ignore_errors=True)
            self._finished.set()

    async def read(self, offset: int, limit: int) -> tuple[bytes, int | None]:
        """Up to ``limit`` bytes of the log from ``offset``; and when the time limit hit, if."""

        def chunk() -> bytes:
            try:
                with self._log.open("rb") as handle:
                    handle.seek(offset)
                    return handle.read(limit)
            except FileNotFoundError:
                return b""

        return await anyio.to_thread.run_sync(chunk), self._timed_out_ms

    async def stop(self) -> None:
        """Stop the run early (killed as on a timeout); it then reports as usual."""
        self._stopped = True
        if self._abort is not None:
            self._abort.set()

    async def finished(self) -> None:
        """Return once the run has ended and cleaned up (at once if it never started)."""
        if self._finished is not None:
            await self._finished.wait()

    async def close(self) -> None:
        """Remove the run's files on this node (its log; the tree went with the run).

        The watchdog stays until then: if this process is stopped before (its owner died,
        say), the run's ``finally`` may run but this never does, and the watchdog cleans up.
        """
        if self._watchdog is not None:
            with contextlib.suppress(psutil.Error):
                self._watchdog.kill()  # psutil checks it is still the same process
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(self._dir, ignore_errors=True))


_WATCHDOG = """
import os, shutil, sys, time
child = os.fork()
if child:  # say who the watchdog is and leave: it is then nobody's child (Ray kills those)
    print(child, flush=True)
    os._exit(0)
os.dup2(os.open(os.devnull, os.O_RDWR), 1)
import psutil
parent, name, marker, scratch = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
try:
    born = psutil.Process(parent).create_time()
    while psutil.Process(parent).create_time() == born:
        time.sleep(0.2)
except psutil.Error:
    pass
for _ in range(50):
    found = 0
    for proc in psutil.process_iter():
        try:
            if proc.pid != os.getpid() and proc.environ().get(name) == marker:
                proc.kill()
                found += 1
        except psutil.Error:
            continue
    if not found:
        break
    time.sleep(0.1)
for _ in range(50):  # the actor, if it is still exiting, may be removing files there too
    shutil.rmtree(scratch, ignore_errors=True)
    if not os.path.lexists(scratch):
        break
    time.sleep(0.1)
"""


def _start_watchdog(marker: str, scratch: Path) -> psutil.Process | None:
    """A process that kills the run's processes if this actor's process dies first.

    It also removes ``scratch``, the run's directory on the node, once they are gone. It
    detaches (a double fork, its own session), because Ray kills a worker's children when the
    worker exits, and it must outlive this one. ``None`` if it could not be started.
    """
    env = {k: v for k, v in os.environ.items() if k != _MARKER_ENV}
    try:
        starter = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(os.getpid()), _MARKER_ENV, marker, str(scratch)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        out, _ = starter.communicate(timeout=30)
        return psutil.Process(int(out.split()[0]))
    except (OSError, ValueError, IndexError, subprocess.SubprocessError, psutil.Error):
        logger.warning("no watchdog for the run in %s", scratch, exc_info=True)
        return None


# -- helpers -----------------------------------------------------------------------------------


async def _pack(cwd: Path) -> bytes:
    """The tracked files of the checkout at ``cwd`` (as on disk) as a gzipped tar archive."""
    from autoresearch.gitrepo import GitRepo

    git = await GitRepo.open(cwd)
    files = await git.tracked_files(limit=1 << 30)
    return await anyio.to_thread.run_sync(_tar, cwd, files)


def _tar(root: Path, files: list[str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for rel in files:
            path = root / rel
            if path.exists() or path.is_symlink():
                tar.add(path, arcname=rel, recursive=False)
            if buffer.tell() > MAX_UPLOAD_BYTES:
                raise ValueError(
                    f"the tracked files take more than {MAX_UPLOAD_BYTES // 1024**2} MiB "
                    "compressed; put the repository on storage every node mounts and set "
                    "ray.shared_path (see docs/ray.md)"
                )
    return buffer.getvalue()


def _unpack(archive: bytes, where: Path) -> None:
    where.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        if hasattr(tarfile, "tar_filter"):  # Python 3.11.4 and later
            tar.extractall(where, filter="tar")
        else:
            tar.extractall(where)  # our own archive of the candidate's tracked files


def _open_sink(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("wb", buffering=0)


def _kill_quietly(ray: Any, host: Any, name: str | None = None) -> None:
    """Kill the actor ``host``; with its ``name``, wait (briefly) until Ray has let it go."""
    with contextlib.suppress(Exception):
        ray.kill(host, no_restart=True)
    if name is None:
        return
    deadline = time.monotonic() + _KILL_WAIT_S
    while time.monotonic() < deadline:
        try:
            ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            return  # gone
        except Exception:
            return  # the cluster cannot tell; nothing more to do here
        time.sleep(0.05)


def _kill_named(ray: Any, names: list[str]) -> int:
    killed = 0
    for name in names:
        try:
            actor = ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            continue  # gone already
        _kill_quietly(ray, actor, name)
        killed += 1
    return killed


def _read_record(path: Path) -> list[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    actors = data.get("actors", []) if isinstance(data, dict) else []
    return [name for name in actors if isinstance(name, str)]


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _inside(path: Path, folder: Path) -> bool:
    inner, outer = PurePosixPath(path.resolve()).parts, PurePosixPath(folder.resolve()).parts
    return inner[: len(outer)] == outer


def _unreachable(address: str | None) -> str | None:
    """Why nothing listens at ``address`` (``HOST:PORT`` or ``ray://HOST:PORT``), if so.

    Ray itself waits minutes for a head that is not there; a plain TCP connection answers in
    seconds. ``auto``, ``local`` and no address at all are left to Ray (they find or start a
    cluster on this machine and fail fast).
    """
    if not address or address in ("auto", "local"):
        return None
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return f"{address!r} is not HOST:PORT, ray://HOST:PORT or auto"
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=_CONNECT_TIMEOUT_S):
            return None
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _failed(error: str, *, duration_ms: int = 0) -> RunOutcome:
    return RunOutcome(
        exit_code=None,
        timed_out=False,
        duration_ms=duration_ms,
        elapsed_at_kill_ms=None,
        peak_rss_gb=None,
        output_bytes=0,
        tail="",
        error=error,
    )
