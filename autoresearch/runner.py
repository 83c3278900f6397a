"""Run one experiment command as a subprocess, under a time limit, leaving nothing behind.

The command runs through ``/bin/sh -c`` in its own session (so its own process group), with
stdin closed and stdout+stderr sent straight to a log file. The engine never reads the output
while the command runs: the child writes to the file descriptor itself, so a flood of output
costs the engine nothing and the log is always complete.

While the command runs, a background task samples the resident memory of the whole process
tree and remembers every descendant it has seen, including ones that called ``setsid`` and
left the group. Every run also carries a token of its own, ``AUTORESEARCH_RUN_ID``, in its
environment. On Linux the engine is the child subreaper of its runs (``PR_SET_CHILD_SUBREAPER``,
held while any run is active): a process whose parent exits (a daemon that double-forks, like
``setsid -f``) re-parents to the engine instead of init, and the runner claims it when it
carries the token, is still in the run's session, or was seen as a descendant. When the run
ends, whichever way it ends (normal exit, timeout, cancellation), everything that is still
alive is killed and waited for:

- timeout or cancellation: SIGTERM to the group, every known descendant and every claimed
  orphan, a grace period, then SIGKILL to whatever is left;
- normal exit: background jobs and daemons the command left behind get SIGKILL straight away.

Claimed orphans that exit are reaped (``waitpid`` on exactly those pids) so that no zombie is
left behind; other children of the engine (another run, an agent's tool) are never touched.

A failed experiment is data, never an exception: problems on the engine's side (the log
cannot be opened, the command cannot be started) come back in ``RunOutcome.error``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import anyio
import anyio.abc
import anyio.to_thread
import psutil

__all__ = ["RunOutcome", "kill_orphaned_run", "run_experiment"]

logger = logging.getLogger("autoresearch")

_GIB = 1024**3
_KILL_WAIT_S = 2.0  # how long SIGKILLed processes get to disappear
_CLEANUP_MARGIN_S = 3.0  # extra time on top of the grace period for the whole shielded cleanup
_POLL_S = 0.05
_RUN_ID_ENV = "AUTORESEARCH_RUN_ID"  # the token every process of a run inherits
_PROBE_MIN, _PROBE_MAX = 4096, 1 << 20  # bounds for the disk-full probe (see _no_room_after)


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What happened when an experiment command ran.

    Attributes:
        exit_code: the shell's exit status (negative N if signal N from outside killed it);
            ``None`` when the engine killed the run (timeout) or the command never started.
        timed_out: the run hit ``timeout_s`` and was killed.
        duration_ms: wall time from start until the command's process exited.
        elapsed_at_kill_ms: for a timed-out run, milliseconds from start until SIGTERM was sent.
        peak_rss_gb: the highest sampled resident memory of the whole process tree, in GiB;
            ``None`` when no sample was taken (a very short run).
        output_bytes: size of the log file after the run.
        tail: the end of the log (at most ``tail_bytes`` bytes), decoded as UTF-8 with
            replacement, starting at a line boundary when the log is longer than that.
        error: a failure on the engine's side (log not writable, command not startable);
            ``None`` normally. The engine treats a run with an error as a crash.
        disk_full: when the run ended, the filesystem holding the log refused to take more
            bytes at the log's end (a real write, probed by the engine, failed with ENOSPC). The
            run's own writes go straight to the file descriptor, so this is how the engine
            learns that the output, and perhaps the metric line, may have been cut off. A disk
            that is merely low on space but still accepts writes is not full.
        aborted: the caller's ``abort`` event stopped the run early (it was killed as on a
            timeout, but ``timed_out`` is False).

    """

    exit_code: int | None
    timed_out: bool
    duration_ms: int
    elapsed_at_kill_ms: int | None
    peak_rss_gb: float | None
    output_bytes: int
    tail: str
    error: str | None
    disk_full: bool = False
    aborted: bool = False


async def run_experiment(
    command: str,
    *,
    cwd: Path,
    log_path: Path,
    timeout_s: float,
    kill_grace_s: float = 5.0,
    env: Mapping[str, str] | None = None,
    on_timeout: Callable[[int], Awaitable[None]] | None = None,
    on_start: Callable[[int], Awaitable[None]] | None = None,
    abort: anyio.Event | None = None,
    sample_interval_s: float = 0.25,
    tail_bytes: int = 64 * 1024,
) -> RunOutcome:
    """Run ``command`` with ``/bin/sh -c`` in ``cwd`` and return what happened.

    Output (stdout and stderr, interleaved as written) goes to ``log_path``, which is
    truncated first. ``env`` is added on top of the engine's own environment. When
    ``timeout_s`` passes, ``on_timeout`` is awaited with the elapsed milliseconds (it gets
    at most ``kill_grace_s``; its exceptions are logged and ignored), then the process tree
    gets SIGTERM, ``kill_grace_s`` to exit, and SIGKILL. If the calling task is cancelled,
    the same cleanup runs shielded and the cancellation then propagates. No process started
    by the command survives this call. ``on_start`` is awaited with the pid (which is also
    the process group id) right after the command starts, so a caller can record it.
    Setting ``abort`` stops the run early the way a timeout does (``RunOutcome.aborted``).
    The command's environment also gets ``AUTORESEARCH_RUN_ID``, a token unique to this run.
    """
    # Opening the log and spawning are shielded so that a cancellation arriving meanwhile
    # cannot lose the file handle or the process; it is delivered inside the try below,
    # where the cleanup knows what to kill.
    try:
        with anyio.CancelScope(shield=True):
            log_file = await anyio.to_thread.run_sync(_open_log, log_path)
    except OSError as exc:
        return _not_run(f"could not open the log file {log_path}: {exc.strerror or exc}")

    wall_start = time.time()
    run_id = uuid.uuid4().hex
    # Before the fork: a process only re-parents to a subreaper that was one when it was born.
    adopting, before = await _adopt()
    try:
        with anyio.CancelScope(shield=True):
            process = await anyio.open_process(
                command,
                cwd=cwd,
                env={**os.environ, **(env or {}), _RUN_ID_ENV: run_id},
                stdin=subprocess.DEVNULL,
                stdout=log_file.fileno(),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
    except BaseException as exc:
        _SUBREAPER.release()
        if isinstance(exc, OSError):
            return _not_run(f"could not start the run command: {exc}")
        raise
    finally:
        # The child holds its own copy of the descriptor; nothing was written through ours,
        # so closing it is a plain close(2) with nothing to flush.
        log_file.close()

    started = time.monotonic()
    tree = _ProcessTree(process.pid, wall_start, run_id=run_id, adopting=adopting, before=before)
    exit_code: int | None = None
    elapsed_at_kill_ms: int | None = None
    try:
        if on_start is not None:
            await on_start(process.pid)
        exit_code = await _wait(process, tree, timeout_s, sample_interval_s, abort)

        aborted = exit_code is None and abort is not None and abort.is_set()
        if exit_code is not None:
            duration_ms = _ms_since(started)
            with anyio.move_on_after(_KILL_WAIT_S + 1.0, shield=True):
                await tree.stop(grace_s=None)
        else:
            if not aborted:
                await _notify_timeout(on_timeout, _ms_since(started), kill_grace_s)
            elapsed_at_kill_ms = _ms_since(started)
            with anyio.move_on_after(kill_grace_s + _CLEANUP_MARGIN_S, shield=True):
                await tree.stop(grace_s=kill_grace_s)
                await process.wait()
            duration_ms = _ms_since(started)
    except BaseException:
        with anyio.move_on_after(kill_grace_s + _CLEANUP_MARGIN_S, shield=True):
            await tree.stop(grace_s=kill_grace_s)
            await process.wait()
        raise
    finally:
        _SUBREAPER.release()

    output_bytes, tail, disk_full, error = await anyio.to_thread.run_sync(
        _read_log, log_path, tail_bytes
    )
    return RunOutcome(
        exit_code=exit_code,
        timed_out=elapsed_at_kill_ms is not None and not aborted,
        aborted=aborted,
        duration_ms=duration_ms,
        elapsed_at_kill_ms=elapsed_at_kill_ms,
        peak_rss_gb=None if tree.peak_rss is None else tree.peak_rss / _GIB,
        output_bytes=output_bytes,
        tail=tail,
        error=error,
        disk_full=disk_full,
    )


def _is_orphan(proc: psutil.Process, pgid: int | None, marker: Mapping[str, str]) -> bool:
    if pgid is not None and os.getpgid(proc.pid) == pgid:
        return True
    if not marker:
        return False
    environ = proc.environ()
    return all(environ.get(key) == value for key, value in marker.items())


def _kill_orphans_in(cwd: Path, pgid: int | None, marker: Mapping[str, str]) -> int:
    killed = 0
    root = str(cwd.resolve())
    me = os.getpid()
    for proc in psutil.process_iter():
        try:
            if proc.pid == me:
                continue
            where = proc.cwd()
            if where != root and not where.startswith(root + os.sep):
                continue  # never touch anything that does not run inside the repository
            if _is_orphan(proc, pgid, marker):
                proc.kill()
                killed += 1
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return killed


async def kill_orphaned_run(
    cwd: Path, *, pgid: int | None = None, marker: Mapping[str, str] | None = None
) -> int:
    """Kill what is left of a run an earlier engine process started (it died with it running).

    A process is killed when it works inside ``cwd`` and either belongs to process group
    ``pgid`` or carries every ``marker`` variable in its environment (the engine gives each run
    AUTORESEARCH_CYCLE/TAG, which also finds a run whose pid was never recorded). Returns how
    many were killed.
    """
    return await anyio.to_thread.run_sync(_kill_orphans_in, cwd, pgid, dict(marker or {}))


class _Subreaper:
    """The engine as the child subreaper of its runs, while any run is active (Linux only).

    ``PR_SET_CHILD_SUBREAPER`` makes a process whose parent exits re-parent to this process
    instead of init, where the run can still find, kill and reap it. The flag is set when the
    first run starts and cleared when the last one ends: between runs an orphan of anything
    else this process started (an agent's tool, say) still goes to init, which reaps it, and
    never waits here as a zombie. A flag this class did not set (the application set it) is
    left as it is. Elsewhere nothing changes and runs rely on the process tree they sampled.
    """

    _SET, _GET = 36, 37  # PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER from <linux/prctl.h>

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._owned = False  # this class set the flag, so it clears it
        self._prctl: Callable[..., int] | None = None
        self._loaded = False

    def acquire(self) -> bool:
        """Count one more active run; return whether this process is now a subreaper."""
        with self._lock:
            self._users += 1
            prctl = self._load()
            if prctl is None:
                return False
            if self._owned:
                return True
            import ctypes

            flag = ctypes.c_int(0)
            if prctl(self._GET, ctypes.addressof(flag), 0, 0, 0) == 0 and flag.value:
                return True
            self._owned = prctl(self._SET, 1, 0, 0, 0) == 0
            if not self._owned:
                logger.debug("PR_SET_CHILD_SUBREAPER failed (errno %d)", ctypes.get_errno())
            return self._owned

    def release(self) -> None:
        """Count one run fewer; the last one clears the flag if this class set it."""
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._owned and self._prctl is not None:
                self._prctl(self._SET, 0, 0, 0, 0)
                self._owned = False

    def _load(self) -> Callable[..., int] | None:
        if not self._loaded:
            self._loaded = True
            if sys.platform.startswith("linux"):
                import ctypes

                try:
                    prctl = ctypes.CDLL(None, use_errno=True).prctl
                except (OSError, AttributeError):
                    return None
                prctl.restype = ctypes.c_int
                prctl.argtypes = [ctypes.c_int, *[ctypes.c_ulong] * 4]
                self._prctl = prctl
        return self._prctl


_SUBREAPER = _Subreaper()


class _ProcessTree:
    """The processes one run started: its group, its descendants, its orphans that came back.

    That is the process group, every descendant ever seen, and (when the engine is the
    subreaper) the run's orphans that re-parented to the engine. Sync methods block on /proc
    and are meant to run in a worker thread; only one of them runs at a time (the sampler is
    stopped before any cleanup starts).
    """

    def __init__(
        self,
        pid: int,
        wall_start: float,
        *,
        run_id: str,
        adopting: bool,
        before: frozenset[int] = frozenset(),
    ) -> None:
        self.pgid = pid  # the shell leads its own session, so its pid is the group id
        self.peak_rss: int | None = None
        self._wall_start = wall_start
        self._root: psutil.Process | None = None
        self._root_looked_up = False
        self._seen: dict[int, psutil.Process] = {}
        self._run_id = run_id
        self._adopting = adopting
        self._adopted: dict[int, psutil.Process] = {}  # this process's children of the run
        self._strangers: dict[int, psutil.Process] = {}  # ... and the ones of no concern
        self._before = before  # this process's children from before the run started

    def sample(self) -> None:
        """Add up the resident memory of every living process in the tree; keep the peak."""
        total, counted = 0, False
        for proc in self._descendants().values():
            try:
                total += proc.memory_info().rss
                counted = True
            except psutil.Error:
                continue
        if counted and (self.peak_rss is None or total > self.peak_rss):
            self.peak_rss = total

    def living(self) -> list[psutil.Process]:
        """Every member of the tree or of its process group that has not exited yet."""
        members = self._descendants()
        members.update(self._group_members())
        return [proc for proc in members.values() if _alive(proc)]

    def signal_living(self, sig: signal.Signals | None) -> int:
        """Send ``sig`` (if any) to every living member; return how many there were.

        When none is left, the run's orphans that turned into zombies meanwhile are reaped.
        """
        targets = self.living()
        for proc in targets:
            if sig is None:
                break
            try:
                proc.send_signal(sig)  # psutil checks the create time: a reused pid is skipped
            except psutil.Error:
                continue
        if not targets and self._adopting:
            self._orphans()
        return len(targets)

    async def stop(self, *, grace_s: float | None) -> None:
        """Stop everything: SIGTERM and ``grace_s`` to exit (skipped if None), then SIGKILL.

        SIGKILL is repeated until nothing is left (or a short deadline passes), which also
        catches processes forked while the tree was being torn down.
        """
        if grace_s is not None:
            with anyio.move_on_after(grace_s):
                left = await self._signal(signal.SIGTERM)
                while left:
                    await anyio.sleep(_POLL_S)
                    left = await anyio.to_thread.run_sync(self.signal_living, None)
        with anyio.move_on_after(_KILL_WAIT_S):
            while True:
                if not await self._signal(signal.SIGKILL):
                    break
                await anyio.sleep(_POLL_S)

    async def _signal(self, sig: signal.Signals) -> int:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, sig)
        return await anyio.to_thread.run_sync(self.signal_living, sig)

    def _descendants(self) -> dict[int, psutil.Process]:
        """Collect the root, its descendants, and remembered processes still alive (and theirs)."""
        if not self._root_looked_up:
            self._root_looked_up = True
            try:
                root = psutil.Process(self.pgid)
                if root.create_time() >= self._wall_start - 1.0:
                    self._root = root
            except psutil.Error:
                pass
        anchors = [self._root] if self._root is not None else []
        anchors.extend(self._seen.values())
        if self._adopting:
            anchors.extend(self._orphans())
        found: dict[int, psutil.Process] = {}
        for proc in anchors:
            if proc.pid in found or not _alive(proc):
                continue
            found[proc.pid] = proc
            try:
                children = proc.children(recursive=True)
            except psutil.Error:
                continue
            for child in children:
                found.setdefault(child.pid, child)
        # Forget the dead, remember the new (Process equality includes the create time).
        self._seen = {pid: proc for pid, proc in found.items() if proc is not self._root}
        return found

    def _orphans(self) -> list[psutil.Process]:
        """The living processes of the run among this process's children; reap the dead ones.

        They got here by re-parenting (this process is their subreaper). Only the shell is a
        child this process forked for the run, and anyio waits for it, so it is skipped.
        """
        children = _children_of_this_process()
        self._adopted = {pid: p for pid, p in self._adopted.items() if pid in children}
        self._strangers = {pid: p for pid, p in self._strangers.items() if pid in children}
        living: list[psutil.Process] = []
        for pid in children - self._before:
            if pid == self.pgid:
                continue
            try:
                proc = self._adopted.get(pid)
                if proc is None or not proc.is_running():
                    proc = self._claim(pid)
                    if proc is None:
                        continue
                if proc.status() != psutil.STATUS_ZOMBIE:
                    living.append(proc)
                    continue
            except psutil.Error:
                continue
            # A zombie that is our child holds its pid until we reap it, so this is that process.
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            del self._adopted[pid]
        return living

    def _claim(self, pid: int) -> psutil.Process | None:
        """``pid`` as a process of this run, or ``None`` if it belongs to someone else."""
        stranger = self._strangers.get(pid)
        if stranger is not None and stranger.is_running():
            return None
        proc = psutil.Process(pid)
        if self._seen.get(pid) == proc or _session_of(pid) == self.pgid:
            mine = True  # seen below the shell, or still in the run's session
        else:
            try:
                mine = proc.environ().get(_RUN_ID_ENV) == self._run_id
            except psutil.Error:
                return None  # a zombie, or caught mid-exec: look again next time
        (self._adopted if mine else self._strangers)[pid] = proc
        return proc if mine else None

    def _group_members(self) -> dict[int, psutil.Process]:
        """Find processes still in the run's process group, including ones never sampled."""
        try:
            os.killpg(self.pgid, 0)  # one syscall answers "is anything left in the group?"
        except ProcessLookupError:
            return {}
        except PermissionError:
            pass
        members: dict[int, psutil.Process] = {}
        for pid in psutil.pids():
            try:
                if os.getpgid(pid) == self.pgid:
                    members[pid] = psutil.Process(pid)
            except (OSError, psutil.Error):
                continue
        return members


async def _adopt() -> tuple[bool, frozenset[int]]:
    """Become the subreaper for a run about to start: (whether we are, our children by then).

    The engine's children from before the run are never the run's orphans, so only newer ones
    are looked at later (cheap even when the engine has many children of its own).
    """
    adopting = _SUBREAPER.acquire()
    if not adopting:
        return False, frozenset()
    with anyio.CancelScope(shield=True):
        children = await anyio.to_thread.run_sync(_children_of_this_process)
    return True, frozenset(children)


def _session_of(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def _children_of_this_process() -> set[int]:
    """The pids whose parent is this process.

    On Linux each thread's ``/proc/self/task/<tid>/children`` lists them, which costs a read
    per thread instead of a read per process on the machine; elsewhere psutil scans.
    """
    me = os.getpid()
    tasks = f"/proc/{me}/task"
    if not os.path.exists(f"{tasks}/{me}/children"):
        return {proc.pid for proc in psutil.Process(me).children()}
    pids: set[int] = set()
    for tid in os.listdir(tasks):
        try:
            with open(f"{tasks}/{tid}/children", "rb") as handle:
                pids.update(int(word) for word in handle.read().split())
        except OSError:
            continue  # the thread has exited; its children moved to another thread
    return pids


def _alive(proc: psutil.Process) -> bool:
    """Whether ``proc`` still runs: same pid and create time, and not a zombie."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


async def _sample_forever(tree: _ProcessTree, interval_s: float) -> None:
    while True:
        await anyio.to_thread.run_sync(tree.sample)
        await anyio.sleep(interval_s)


async def _wait(
    process: anyio.abc.Process,
    tree: _ProcessTree,
    timeout_s: float,
    sample_interval_s: float,
    abort: anyio.Event | None,
) -> int | None:
    """The run's exit code; None when the time limit passed or ``abort`` was set first."""
    exit_code: int | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(_sample_forever, tree, sample_interval_s)
        with anyio.move_on_after(timeout_s) as waiting:
            if abort is not None:
                tg.start_soon(_cancel_when_set, abort, waiting)
            exit_code = await process.wait()
        tg.cancel_scope.cancel()
    return exit_code


async def _cancel_when_set(event: anyio.Event, scope: anyio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def _notify_timeout(
    callback: Callable[[int], Awaitable[None]] | None, elapsed_ms: int, limit_s: float
) -> None:
    if callback is None:
        return
    try:
        with anyio.move_on_after(limit_s):
            await callback(elapsed_ms)
    except Exception:
        logger.exception("on_timeout callback failed; stopping the run anyway")


def _open_log(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("wb", buffering=0)


def _read_log(path: Path, limit: int) -> tuple[int, str, bool, str | None]:
    """The log's size and tail, whether its disk is full, and why it could not be read."""
    try:
        size, tail = _read_tail(path, limit)
    except OSError as exc:
        why = f"could not read the log file {path}: {exc.strerror or exc}"
        return 0, "", _no_room_after(path), why
    return size, tail, _no_room_after(path), None


def _read_tail(path: Path, limit: int) -> tuple[int, str]:
    """Return the log's size and its last ``limit`` bytes, cut at a line start if possible."""
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        if limit <= 0 or size == 0:
            return size, ""
        start = max(0, size - limit)
        # Read one byte before the window to know whether it already starts a line.
        f.seek(max(0, start - 1))
        data = f.read(size - max(0, start - 1))
    if start > 0:
        before, data = data[:1], data[1:]
        if before != b"\n":
            cut = data.find(b"\n")
            if 0 <= cut < len(data) - 1:
                data = data[cut + 1 :]
            else:  # one long line: at least do not start inside a UTF-8 sequence
                skip = 0
                while skip < min(3, len(data)) and 0x80 <= data[skip] < 0xC0:
                    skip += 1
                data = data[skip:]
    return size, data.decode("utf-8", errors="replace")


def _no_room_after(path: Path) -> bool:
    """Whether the filesystem holding ``path`` refuses more bytes at its end (ENOSPC).

    The run wrote to the file itself, so its write errors never reached the engine. This asks
    the filesystem for one more write's worth of blocks right after the log's last byte and
    gives them back at once (truncate to the old size). The size asked for is the file's
    ``st_blksize``: the preferred write size, which is also the buffer a program's stdout
    flushes in, and at least one block past the log's last allocated one, so the probe always
    needs fresh space (asking a byte could fit in the log's last, half-used block and succeed
    on a full disk). It is bounded to 4 KiB..1 MiB so that a filesystem that reports a huge
    preferred size does not make a low disk look full. After a write fails with ENOSPC the
    disk has no whole block left, so the probe fails too; a disk that is merely low on space
    takes the probe.
    """
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        size = info.st_size
        length = min(max(info.st_blksize, _PROBE_MIN), _PROBE_MAX)
        try:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(fd, size, length)
            else:  # macOS: a real write of zeros
                os.pwrite(fd, bytes(length), size)
        except OSError as exc:
            return exc.errno == errno.ENOSPC
        finally:
            os.ftruncate(fd, size)
        return False
    except OSError:
        return False
    finally:
        os.close(fd)


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _not_run(error: str) -> RunOutcome:
    return RunOutcome(
        exit_code=None,
        timed_out=False,
        duration_ms=0,
        elapsed_at_kill_ms=None,
        peak_rss_gb=None,
        output_bytes=0,
        tail="",
        error=error,
    )
