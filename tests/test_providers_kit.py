"""Shared pieces of the provider tests: a scripted endpoint, one case per provider, answers.

Not a test module itself (it holds no tests); ``test_providers.py`` and
``test_providers_http.py`` import from it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from autoresearch.providers import _http, create_chat_model
from autoresearch.providers.base import ChatMessage, ChatModel, ChatRequest
from autoresearch.results import Usage

REQUEST = ChatRequest(
    system="You are a careful researcher.",
    messages=[
        ChatMessage(role="user", content="Here is train.py."),
        ChatMessage(role="assistant", content="I read it."),
        ChatMessage(role="user", content="Propose one change."),
    ],
    max_tokens=256,
    temperature=0.2,
)
BARE_REQUEST = ChatRequest(messages=[ChatMessage(role="user", content="Hi")], max_tokens=16)
TEXT = "Try a lower learning rate."

ANTHROPIC_REPLY = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "text", "text": "Try a lower "},
        {"type": "text", "text": "learning rate."},
    ],
    "stop_reason": "end_turn",
    "usage": {
        "input_tokens": 12,
        "output_tokens": 7,
        "cache_read_input_tokens": 900,
        "cache_creation_input_tokens": 100,
    },
}
OPENAI_REPLY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "served-model",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": TEXT}, "finish_reason": "stop"}
    ],
    "usage": {
        "prompt_tokens": 1012,
        "completion_tokens": 7,
        "total_tokens": 1019,
        "prompt_tokens_details": {"cached_tokens": 900},
    },
}
GEMINI_REPLY = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [{"text": "Let me think.", "thought": True}, {"text": TEXT}],
            },
            "finishReason": "STOP",
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 1012,
        "candidatesTokenCount": 5,
        "thoughtsTokenCount": 2,
        "cachedContentTokenCount": 900,
        "totalTokenCount": 1019,
    },
    "modelVersion": "served-model",
}
OLLAMA_REPLY = {
    "model": "served-model",
    "created_at": "2025-01-01T00:00:00Z",
    "message": {"role": "assistant", "content": TEXT},
    "done": True,
    "done_reason": "stop",
    "prompt_eval_count": 1012,
    "eval_count": 7,
}
CACHED = Usage(input_tokens=1012, output_tokens=7, cache_read_tokens=900, calls=1)


@dataclass(frozen=True)
class Case:
    """One provider as the tests drive it: its settings and what the wire should show."""

    provider: str
    url: str
    auth: Mapping[str, str]
    reply: Mapping[str, Any]
    usage: Usage = CACHED
    key: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    model: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    stop: str = "stop"

    def __str__(self) -> str:
        return self.provider


def _keyed(provider: str, var: str, key: str, url: str, header: str, reply: Any, **kw: Any) -> Case:
    value = key if header != "Authorization" else f"Bearer {key}"
    env = {var: key, **kw.pop("env", {})}
    return Case(provider, url, {header: value}, reply, key=key, env=env, **kw)


CASES = [
    _keyed(
        "anthropic",
        "ANTHROPIC_API_KEY",
        "sk-ant-test-4f9c2a71",
        "https://api.anthropic.com/v1/messages",
        "x-api-key",
        ANTHROPIC_REPLY,
        usage=Usage(
            input_tokens=1012,
            output_tokens=7,
            cache_read_tokens=900,
            cache_write_tokens=100,
            calls=1,
        ),
        stop="end_turn",
    ),
    _keyed(
        "openai",
        "OPENAI_API_KEY",
        "sk-proj-test-8d1e3b55",
        "https://api.openai.com/v1/chat/completions",
        "Authorization",
        OPENAI_REPLY,
    ),
    _keyed(
        "openai-compatible",
        "OPENAI_COMPATIBLE_API_KEY",
        "vllm-test-key-2c7a",
        "http://gpu-box:8000/v1/chat/completions",
        "Authorization",
        OPENAI_REPLY,
        env={"OPENAI_COMPATIBLE_BASE_URL": "http://gpu-box:8000/v1"},
        model="Qwen/Qwen2.5-Coder-7B-Instruct",
    ),
    _keyed(
        "openrouter",
        "OPENROUTER_API_KEY",
        "sk-or-v1-test-6b0f9e",
        "https://openrouter.ai/api/v1/chat/completions",
        "Authorization",
        OPENAI_REPLY,
    ),
    _keyed(
        "azure",
        "AZURE_OPENAI_API_KEY",
        "azure-test-key-3e8d0c",
        "https://myres.openai.azure.com/openai/deployments/gpt4o-prod/chat/completions"
        "?api-version=2024-10-21",
        "api-key",
        OPENAI_REPLY,
        env={"AZURE_OPENAI_ENDPOINT": "https://myres.openai.azure.com/"},
        model="gpt4o-prod",
    ),
    _keyed(
        "mistral",
        "MISTRAL_API_KEY",
        "mistral-test-key-9a4c",
        "https://api.mistral.ai/v1/chat/completions",
        "Authorization",
        OPENAI_REPLY,
    ),
    _keyed(
        "google-ai",
        "GEMINI_API_KEY",
        "AIza-test-key-1b5d7f",
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:generateContent",
        "x-goog-api-key",
        GEMINI_REPLY,
        stop="STOP",
    ),
    _keyed(
        "google-vertex",
        "GOOGLE_VERTEX_ACCESS_TOKEN",
        "ya29.test-token-7c2e",
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/my-proj/locations/"
        "europe-west4/publishers/google/models/gemini-2.5-pro:generateContent",
        "Authorization",
        GEMINI_REPLY,
        env={"GOOGLE_CLOUD_PROJECT": "my-proj", "GOOGLE_CLOUD_LOCATION": "europe-west4"},
        stop="STOP",
    ),
    Case(
        "ollama",
        "http://127.0.0.1:11434/api/chat",
        {},
        OLLAMA_REPLY,
        usage=Usage(input_tokens=1012, output_tokens=7, calls=1),
        model="qwen2.5-coder",
    ),
    Case(
        "lm-studio",
        "http://127.0.0.1:1234/v1/chat/completions",
        {},
        OPENAI_REPLY,
        model="qwen2.5-coder-7b-instruct",
    ),
    Case("llamacpp", "http://127.0.0.1:8080/v1/chat/completions", {}, OPENAI_REPLY),
]
KEYED_CASES = [case for case in CASES if case.key]
BY_NAME = {case.provider: case for case in CASES}


@dataclass(frozen=True)
class Reply:
    """One scripted HTTP answer (built afresh for every request)."""

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    text: str | None = None

    def response(self) -> httpx.Response:
        if self.text is not None:
            return httpx.Response(self.status, text=self.text, headers=dict(self.headers))
        return httpx.Response(self.status, json=self.body, headers=dict(self.headers))


ERROR_BODY = {"error": {"type": "invalid_request_error", "message": "something is off"}}


def fail(status: int, headers: Mapping[str, str] | None = None, body: Any = None) -> Reply:
    """An error answer with a vendor-like JSON error body."""
    return Reply(status, ERROR_BODY if body is None else body, headers or {})


class Server:
    """A scripted endpoint for ``httpx.MockTransport``; the last reply repeats."""

    def __init__(self, *replies: Reply | Exception) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
        if isinstance(reply, Exception):
            raise reply
        return reply.response()

    @property
    def attempts(self) -> int:
        return len(self.requests)

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


Build = Callable[..., tuple[ChatModel, Server]]


@pytest.fixture
async def build() -> AsyncIterator[Build]:
    """``build(case, *replies, **create_chat_model_arguments) -> (model, server)``."""
    clients: list[httpx.AsyncClient] = []

    def make(case: Case, *replies: Reply | Exception, **kwargs: Any) -> tuple[ChatModel, Server]:
        server = Server(*(replies or (Reply(200, case.reply),)))
        client = httpx.AsyncClient(transport=httpx.MockTransport(server))
        clients.append(client)
        kwargs.setdefault("env", case.env)
        kwargs.setdefault("options", case.options)
        model = create_chat_model(
            case.provider, kwargs.pop("model", case.model), client=client, **kwargs
        )
        return model, server

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture(autouse=True)
def delays(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retries record their delays here instead of waiting."""
    recorded: list[float] = []

    async def record(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(_http, "sleep", record)
    return recorded
