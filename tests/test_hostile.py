"""Hostile inputs: untrusted edits, pathological output and patterns, a full disk, the sandbox,
and API keys that must never reach a file, an event or an error message."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest

from autoresearch import (
    AuthenticationError,
    ConfigError,
    Edit,
    NeuroLink,
    ScriptedProposer,
    ScriptedStep,
)
from autoresearch.edits import MAX_FILE_BYTES
from autoresearch.metrics import PatternTooSlowError, find_last_match
from tests.conftest import Recorder, base_config, git, make_repo, snapshot, tool

pytestmark = pytest.mark.anyio


def worker(repo: Path, steps: list[ScriptedStep], **overrides: object):  # type: ignore[no-untyped-def]
    return NeuroLink().create_research_worker(
        base_config(repo, **overrides), proposer=ScriptedProposer(steps)
    )


def _work_tree(repo: Path) -> dict[str, str]:
    return {
        k: v for k, v in snapshot(repo).items() if not k.startswith((".git/", ".autoresearch/"))
    }


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (Edit(path="lib/escape.py", content="x = 1\n"), "outside the repository"),
        (Edit(path="train.py", content="x = 1\n" * (MAX_FILE_BYTES // 6 + 10)), "over"),
        (Edit(path="train.py", content="X = 1\x00\n"), "binary"),
        (Edit(path="lib/../train.py", content="x = 1\n"), "'..'"),
    ],
)
async def test_untrusted_edits_are_refused_and_nothing_is_written(
    tmp_path: Path, edit: Edit, words: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    repo = make_repo(
        tmp_path / "repo", {"train.py": "print('val_bpb: 1.0')\n", "lib/a.py": "A = 1\n"}
    )
    os.symlink(outside / "escape.py", repo / "lib" / "escape.py")  # dangling link out of the repo
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "link")
    w = worker(
        repo, [ScriptedStep("evil", [edit])], mutablePaths=["train.py", "lib"], immutablePaths=[]
    )
    await w.run_experiment_cycle()
    before, head = _work_tree(repo), git(repo, "rev-parse", "HEAD")
    result = await w.run_experiment_cycle()
    await w.aclose()
    assert result.status == "invalid" and words in result.description
    assert _work_tree(repo) == before and git(repo, "rev-parse", "HEAD") == head
    assert list(outside.iterdir()) == []


async def test_catastrophic_pattern_is_bounded(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text("a" * 5000 + "!\n")
    with pytest.raises(PatternTooSlowError, match="backtracks catastrophically"):
        await find_last_match(r"(a|aa)+$", log, time_limit=0.3)


async def test_binary_and_newline_free_output(repo: Path) -> None:
    script = (
        "import os, sys\n"
        "sys.stdout.buffer.write(os.urandom(200_000).replace(b'\\n', b' '))\n"
        "sys.stdout.buffer.write(b'\\nval_bpb: 1.5\\n' + b'z' * 3_000_000)\n"
    )
    (repo / "train.py").write_text(script)
    git(repo, "commit", "-qam", "noisy")
    w = worker(repo, [])
    result = await w.run_experiment_cycle()
    await w.aclose()
    assert result.status == "keep" and result.metric_value == 1.5


async def test_a_hundred_children_are_all_killed_on_timeout(repo: Path) -> None:
    script = textwrap.dedent(
        """\
        import os, subprocess, sys, time
        kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
                for _ in range(100)]
        open("pids.txt", "w").write(" ".join(str(k.pid) for k in kids))
        time.sleep(300)
        """
    )
    (repo / "train.py").write_text(script)
    (repo / ".gitignore").write_text("pids.txt\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "fork bomb-ish")
    w = worker(repo, [], timeoutMs=8_000, killGraceMs=500)
    result = await w.run_experiment_cycle()
    await w.aclose()
    assert result.status == "crash" or result.status == "timeout"
    pids = [int(p) for p in (repo / "pids.txt").read_text().split()]
    assert len(pids) == 100
    assert [p for p in pids if _alive(p)] == []


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _can_mount() -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    probe = Path("/tmp") / f"ar-mount-probe-{os.getpid()}"
    probe.mkdir(exist_ok=True)
    ok = (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)]).returncode
        == 0
    )
    if ok:
        subprocess.run(["umount", str(probe)])
    probe.rmdir()
    return ok


@pytest.mark.skipif(not _can_mount(), reason="needs root and tmpfs mounts to fill a disk for real")
async def test_disk_full_while_writing_the_log_is_a_crash_with_the_reason(repo: Path) -> None:
    loud = "for _ in range(100000): print('x' * 99)\nprint('val_bpb: 1.0')\n"
    w = worker(
        repo,
        [
            ScriptedStep("loud", [Edit(path="train.py", content=loud)]),
            ScriptedStep("quiet", [Edit(path="train.py", content="print('val_bpb: 0.5')\n")]),
        ],
    )
    await w.run_experiment_cycle()
    logs = repo / ".autoresearch" / "logs"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(logs)], check=True)
    try:
        result = await w.run_experiment_cycle()
        assert result.status == "crash"
        assert "is full" in result.description
        assert git(repo, "status", "--porcelain") == ""
    finally:
        subprocess.run(["umount", str(logs)], check=True)
    after = await w.run_experiment_cycle()  # the engine did not die: it goes on
    await w.aclose()
    assert after.status == "keep"


async def test_bwrap_sandbox_blocks_network_and_writes_outside(tmp_path: Path) -> None:
    tool("bwrap", "bubblewrap", linux_only=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    script = textwrap.dedent(
        f"""\
        import socket
        from pathlib import Path
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=2); net = "open"
        except OSError:
            net = "blocked"
        try:
            Path({str(outside / "x")!r}).write_text("escaped"); fs = "open"
        except OSError:
            fs = "blocked"
        Path("inside.txt").write_text("ok")
        import sys, tempfile
        with tempfile.NamedTemporaryFile() as scratch:  # TMPDIR is writable
            scratch.write(b"x")
        readable = Path(sys.executable).exists()  # the interpreter's folder stays visible
        print("net", net, "fs", fs, "tmp ok", "python", readable)
        print("val_bpb: 1.0")
        """
    )
    repo = make_repo(tmp_path / "repo", {"train.py": script, ".gitignore": "inside.txt\n"})
    try:
        w = worker(repo, [], sandbox="bwrap", immutablePaths=[])
        result = await w.run_experiment_cycle()
        await w.aclose()
    finally:
        server.shutdown()
    log = (repo / ".autoresearch" / "logs" / "1.log").read_text()
    assert result.status == "keep", log
    assert "net blocked fs blocked tmp ok python True" in log
    assert (repo / "inside.txt").read_text() == "ok"
    assert list(outside.iterdir()) == []


async def test_missing_bwrap_is_one_clear_line(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    before = snapshot(repo)
    w = worker(repo, [], sandbox="bwrap")
    with pytest.raises(ConfigError, match="bwrap .bubblewrap. is not installed; install it"):
        await w.run_experiment_cycle()
    assert snapshot(repo) == before


FAKE_KEY = "sk-test-SECRETSECRET-0123456789abcdef"


class _EchoingUnauthorized(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        body = json.dumps({"error": {"message": f"bad key {self.headers.get('authorization')}"}})
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


async def test_an_api_key_never_reaches_files_events_or_errors(
    repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoingUnauthorized)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    recorder = Recorder()
    try:
        neurolink = NeuroLink(
            provider="openai-compatible",
            model="m",
            api_key=FAKE_KEY,
            base_url=f"http://127.0.0.1:{server.server_address[1]}/v1",
        )
        neurolink.get_event_emitter().on("*", recorder)
        w = neurolink.create_research_worker(base_config(repo))
        await w.run_experiment_cycle()  # the baseline needs no model
        with pytest.raises(AuthenticationError) as info:
            await w.run_experiment_cycle()
        await w.aclose()
        await neurolink.aclose()
    finally:
        server.shutdown()
    assert FAKE_KEY not in str(info.value) and FAKE_KEY not in (info.value.body or "")
    assert FAKE_KEY not in repr(info.value)
    for path in (repo / ".autoresearch").rglob("*"):
        if path.is_file():
            assert FAKE_KEY.encode() not in path.read_bytes(), path
    for event in recorder.events:
        assert FAKE_KEY not in json.dumps(event.to_json_dict())
    assert FAKE_KEY not in caplog.text
    assert (
        FAKE_KEY.encode()
        not in subprocess.run(
            ["git", "log", "--all", "-p"], cwd=repo, capture_output=True, check=True
        ).stdout
    )
