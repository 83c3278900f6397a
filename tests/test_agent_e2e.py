"""The agent end to end: a loopback Chat Completions server drives cycles on a real repository.

Nothing is mocked between the worker and the socket: NeuroLink builds the openai-compatible
provider, which sends real HTTP requests to a stdlib server in a thread; the server answers with
scripted replies, one per request, and records what it was sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from autoresearch import NeuroLink
from autoresearch.proposers.llm import LLMProposer
from tests.conftest import Recorder, base_config, git, snapshot

pytestmark = pytest.mark.anyio

API_KEY = "sk-e2e-secret-0123456789"


@dataclass
class Reply:
    """One scripted HTTP answer: a chat completion with ``content``, or an error status."""

    content: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    prompt_tokens: int = 1000
    completion_tokens: int = 50


@dataclass
class Seen:
    """One request the server received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class ChatServer:
    """A Chat Completions server on 127.0.0.1 that answers from a script, in order."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.seen.append(Seen(self.path, dict(self.headers.items()), body))
                    reply = server.script.pop(0) if server.script else Reply(status=500)
                if self.path != "/v1/chat/completions":
                    reply = Reply(status=404)
                self._answer(reply)

            def _answer(self, reply: Reply) -> None:
                if reply.status == 200:
                    payload: dict[str, Any] = {
                        "id": f"chatcmpl-{len(server.seen)}",
                        "object": "chat.completion",
                        "model": "test-model",
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": reply.content},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {
                            "prompt_tokens": reply.prompt_tokens,
                            "completion_tokens": reply.completion_tokens,
                            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
                        },
                    }
                else:
                    payload = {"error": {"message": f"scripted status {reply.status}"}}
                data = json.dumps(payload).encode()
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def queue(self, *replies: Reply) -> None:
        with self._lock:
            self.script.extend(replies)


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    server = ChatServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def answer(**data: Any) -> Reply:
    """A reply whose content is ``data`` as JSON, the way a well-behaved model writes it."""
    return Reply(content=json.dumps(data))


def search(old: str, new: str, path: str = "train.py") -> dict[str, str]:
    return {"path": path, "search": old, "replace": new}


def runs(repo: Path) -> list[dict[str, Any]]:
    lines = (repo / ".autoresearch" / "runs.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD")


def unchanged_since(repo: Path, best: str, before: dict[str, str]) -> None:
    """The tree is clean, HEAD is at the best commit and no tracked file changed."""
    assert head(repo) == best
    assert git(repo, "status", "--porcelain") == ""
    after = snapshot(repo)
    for rel in ("train.py", "program.md"):
        assert after[rel] == before[rel]
    assert not (repo.parent / "outside.py").exists()


async def test_the_agent_researches_over_http(
    repo: Path, chat_server: ChatServer, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPENAI_COMPATIBLE_API_KEY", "OPENAI_COMPATIBLE_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    base_url = f"http://127.0.0.1:{chat_server.port}/v1"
    async with NeuroLink(
        provider="openai-compatible", model="test-model", base_url=base_url, api_key=API_KEY
    ) as neurolink:
        neurolink.get_event_emitter().on("*", recorder)
        worker = neurolink.create_research_worker(base_config(repo))
        assert isinstance(worker.proposer, LLMProposer)

        # 1. The baseline runs the unmodified code and asks the model nothing.
        baseline = await worker.run_experiment_cycle()
        assert baseline.status == "keep" and baseline.metric_value == pytest.approx(5.0)
        assert chat_server.seen == []

        # 2. An improving edit, given with the plan in one fenced reply: one call, kept.
        combined = json.dumps(
            {
                "description": "move X towards 1",
                "rationale": "val_bpb is (X-1)^2+1",
                "edits": [search("X = 3.0", "X = 2.0")],
            }
        )
        chat_server.queue(Reply(content=f"Here is my idea:\n```json\n{combined}\n```"))
        kept = await worker.run_experiment_cycle("make it lower")
        assert kept.status == "keep", kept.description
        assert kept.metric_value == pytest.approx(2.0)
        assert len(chat_server.seen) == 1
        assert "X = 2.0" in (repo / "train.py").read_text()
        best = head(repo)
        before = snapshot(repo)

        request = chat_server.seen[0]
        assert request.path == "/v1/chat/completions"
        assert request.headers["Authorization"] == f"Bearer {API_KEY}"
        assert request.body["model"] == "test-model"
        messages = request.body["messages"]
        assert messages[0]["role"] == "system"
        assert "Only these paths may change: train.py" in messages[0]["content"]
        assert "Make val_bpb lower." in messages[0]["content"]
        assert messages[1]["role"] == "user"
        assert "2 | X = 3.0" in messages[1]["content"]
        assert "# Hint from the user\nmake it lower" in messages[1]["content"]

        # 3. Garbage: the cycle is invalid and nothing changes.
        chat_server.queue(Reply(content="I am not sure what to do here."))
        garbage = await worker.run_experiment_cycle()
        assert garbage.status == "invalid"
        assert "holds no JSON object" in garbage.description
        unchanged_since(repo, best, before)

        # 4. An edit to an immutable file, twice (the one repair is spent): invalid.
        chat_server.queue(
            answer(
                description="rewrite the program",
                rationale="",
                edits=[{"path": "program.md", "content": "# do whatever\n"}],
            ),
            answer(edits=[{"path": "program.md", "content": "# still mine\n"}]),
        )
        immutable = await worker.run_experiment_cycle()
        assert immutable.status == "invalid"
        assert "'program.md' is immutable" in immutable.description
        repair_request = chat_server.seen[-1].body["messages"]
        assert [m["role"] for m in repair_request] == ["system", "user", "assistant", "user"]
        assert "'program.md' is immutable" in repair_request[-1]["content"]
        unchanged_since(repo, best, before)

        # 5. A path that leaves the repository; the model gives up in the repair: invalid.
        chat_server.queue(
            answer(
                description="write a helper next to the repo",
                rationale="",
                edits=[{"path": "../outside.py", "content": "X = 1\n"}],
            ),
            answer(edits=[]),
        )
        escape = await worker.run_experiment_cycle()
        assert escape.status == "invalid"
        assert "paths with '..' are refused" in escape.description
        unchanged_since(repo, best, before)

        # 6. A search text that occurs three times, in the plan and again in the repair.
        chat_server.queue(
            answer(description="print more", rationale="", edits=[search("print(", "print(1, ")]),
            answer(edits=[search("print(", "print(2, ")]),
        )
        ambiguous = await worker.run_experiment_cycle()
        assert ambiguous.status == "invalid"
        assert "the search text occurs 3 times" in ambiguous.description
        unchanged_since(repo, best, before)

        # 7. Rate limited once (retry-after: 0), then a plan and, separately, its edits: kept.
        chat_server.queue(
            Reply(status=429, headers={"retry-after": "0"}),
            answer(description="X closer to 1", rationale="the optimum is X = 1"),
            Reply(
                content=json.dumps({"edits": [search("X = 2.0", "X = 1.5")]}),
                prompt_tokens=1200,
                completion_tokens=30,
            ),
        )
        calls_before = len(chat_server.seen)
        retried = await worker.run_experiment_cycle()
        assert retried.status == "keep", retried.description
        assert retried.metric_value == pytest.approx(1.25)
        assert len(chat_server.seen) == calls_before + 3
        implement_request = chat_server.seen[-1].body["messages"]
        assert [m["role"] for m in implement_request] == ["system", "user", "assistant", "user"]

    assert not chat_server.script  # every scripted reply was used

    # The ledger: statuses, usage per cycle and the proposal, and no key anywhere.
    records = runs(repo)
    assert [r["status"] for r in records] == [
        "keep",
        "keep",
        "invalid",
        "invalid",
        "invalid",
        "invalid",
        "keep",
    ]
    assert "usage" not in records[0] or records[0]["usage"] is None
    usage = [r.get("usage") for r in records[1:]]
    assert usage[0] == {
        "inputTokens": 1000,
        "outputTokens": 50,
        "cacheReadTokens": 0,
        "cacheWriteTokens": 0,
        "calls": 1,
    }
    # An unreadable reply, and a repair where the model gives up, are counted too.
    assert usage[1]["calls"] == 1
    assert [r.get("proposal") for r in records[2:3]] == [None]
    assert [r["proposal"]["calls"] for r in records[3:6]] == [2, 2, 2]
    assert usage[2]["calls"] == 2 and usage[3]["calls"] == 2 and usage[4]["calls"] == 2
    assert usage[5] == {
        "inputTokens": 2200,
        "outputTokens": 80,
        "cacheReadTokens": 0,
        "cacheWriteTokens": 0,
        "calls": 2,
    }
    assert records[-1]["proposal"] == {
        "provider": "openai-compatible",
        "model": "test-model",
        "calls": 2,
    }
    ends = recorder.of("cycle:end")
    assert [e.status for e in ends] == [r["status"] for r in records]
    assert [e.usage for e in ends][-1].calls == 2
    for path in (repo / ".autoresearch").rglob("*"):
        if path.is_file():
            assert API_KEY not in path.read_text(errors="replace"), path
    assert all(API_KEY not in repr(e) for e in recorder.events)
