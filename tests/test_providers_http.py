"""Providers over HTTP: error mapping, retries, retry-after, secrets, and a loopback server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

import httpx
import pytest
import test_providers_kit as kit
from test_providers_kit import (
    BY_NAME,
    CASES,
    KEYED_CASES,
    OPENAI_REPLY,
    REQUEST,
    TEXT,
    Case,
    Reply,
    fail,
)

from autoresearch import errors
from autoresearch.providers import create_chat_model
from tests.conftest import loopback_server

build = kit.build
delays = kit.delays

pytestmark = pytest.mark.anyio


# Error mapping.


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, errors.BadRequestError),
        (401, errors.AuthenticationError),
        (403, errors.AuthenticationError),
        (404, errors.BadRequestError),
        (422, errors.BadRequestError),
        (402, errors.ProviderError),
    ],
)
async def test_final_statuses_map_to_typed_errors_after_one_attempt(
    build: kit.Build, case: Case, status: int, error: type[errors.ProviderError]
) -> None:
    model, server = build(case, fail(status))
    with pytest.raises(error) as caught:
        await model.complete(REQUEST)
    exc = caught.value
    assert type(exc) is error
    assert server.attempts == 1
    assert (exc.status, exc.provider) == (status, case.provider)
    assert json.loads(exc.body or "") == kit.ERROR_BODY
    message = str(exc)
    assert message.startswith(f"{case.provider}: {status} ")
    assert "something is off" in message
    assert "\n" not in message


async def test_an_authentication_error_says_where_the_key_came_from(build: kit.Build) -> None:
    body = {
        "type": "error",
        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
    }
    model, _ = build(BY_NAME["anthropic"], fail(401, body=body))
    with pytest.raises(errors.AuthenticationError) as caught:
        await model.complete(REQUEST)
    assert str(caught.value) == (
        "anthropic: 401 Unauthorized: invalid x-api-key (check ANTHROPIC_API_KEY)"
    )
    model, _ = build(BY_NAME["anthropic"], fail(401, body=body), api_key="sk-ant-arg-123456")
    with pytest.raises(errors.AuthenticationError, match=r"\(check the api_key argument\)$"):
        await model.complete(REQUEST)


@pytest.mark.parametrize(
    ("provider", "hint"),
    [
        ("openai", "check the model name 'gpt-4.1'"),
        ("azure", "check the deployment name 'gpt4o-prod'"),
        ("ollama", "run `ollama pull qwen2.5-coder`"),
    ],
)
async def test_a_404_names_the_model(build: kit.Build, provider: str, hint: str) -> None:
    model, _ = build(BY_NAME[provider], fail(404, body={"error": "model not found"}))
    with pytest.raises(errors.BadRequestError, match="404 Not Found: model not found") as caught:
        await model.complete(REQUEST)
    assert hint in str(caught.value)


async def test_server_errors_are_retried_then_raised(build: kit.Build, delays: list[float]) -> None:
    model, server = build(
        BY_NAME["anthropic"], fail(529, body={"error": {"message": "Overloaded"}})
    )
    with pytest.raises(errors.ServerError) as caught:
        await model.complete(REQUEST)
    assert server.attempts == 3
    assert len(delays) == 2
    assert caught.value.status == 529
    assert str(caught.value) == "anthropic: 529: Overloaded (after 3 attempts)"


# Retries.


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_a_429_is_retried_after_the_time_the_server_asks(
    build: kit.Build, delays: list[float], case: Case
) -> None:
    model, server = build(case, fail(429, {"retry-after": "2"}), Reply(200, case.reply))
    response = await model.complete(REQUEST)
    assert response.text == TEXT
    assert server.attempts == 2
    assert delays == [2.0]


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_a_connection_error_is_retried(
    build: kit.Build, delays: list[float], case: Case
) -> None:
    model, server = build(case, httpx.ConnectError("connection refused"), Reply(200, case.reply))
    assert (await model.complete(REQUEST)).text == TEXT
    assert server.attempts == 2
    assert len(delays) == 1


@pytest.mark.parametrize(
    "failure",
    [
        fail(408),
        fail(409),
        fail(500),
        fail(502),
        fail(503),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("server disconnected"),
    ],
    ids=["408", "409", "500", "502", "503", "read-timeout", "disconnect"],
)
async def test_transient_failures_are_retried(build: kit.Build, failure: Reply | Exception) -> None:
    case = BY_NAME["openai"]
    model, server = build(case, failure, failure, Reply(200, case.reply))
    assert (await model.complete(REQUEST)).text == TEXT
    assert server.attempts == 3


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "3600"}, 60.0),
    ],
)
async def test_retry_after_values(
    build: kit.Build, delays: list[float], headers: dict[str, str], expected: float
) -> None:
    case = BY_NAME["openai"]
    model, _ = build(case, fail(429, headers), Reply(200, case.reply))
    await model.complete(REQUEST)
    assert delays == [expected]


async def test_retry_after_as_an_http_date(build: kit.Build, delays: list[float]) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    case = BY_NAME["mistral"]
    model, _ = build(case, fail(503, {"retry-after": when}), Reply(200, case.reply))
    await model.complete(REQUEST)
    assert len(delays) == 1
    assert 0.0 < delays[0] <= 30.0


async def test_without_retry_after_the_backoff_doubles_with_jitter(
    build: kit.Build, delays: list[float]
) -> None:
    case = BY_NAME["openai"]
    model, server = build(
        case, fail(500), fail(500), fail(500), Reply(200, case.reply), max_retries=3
    )
    await model.complete(REQUEST)
    assert server.attempts == 4
    assert 0.375 <= delays[0] <= 0.5
    assert 0.75 <= delays[1] <= 1.0
    assert 1.5 <= delays[2] <= 2.0


@pytest.mark.parametrize("status", [400, 401])
async def test_no_retry_on_400_or_401(build: kit.Build, delays: list[float], status: int) -> None:
    model, server = build(BY_NAME["google-ai"], fail(status, {"retry-after": "1"}))
    with pytest.raises(errors.ProviderError):
        await model.complete(REQUEST)
    assert server.attempts == 1
    assert delays == []


async def test_the_server_may_forbid_a_retry(build: kit.Build) -> None:
    model, server = build(BY_NAME["anthropic"], fail(500, {"x-should-retry": "false"}))
    with pytest.raises(errors.ServerError):
        await model.complete(REQUEST)
    assert server.attempts == 1


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (fail(429), errors.RateLimitError),
        (httpx.ConnectError("refused"), errors.ProviderConnectionError),
    ],
    ids=["429", "connect"],
)
async def test_max_retries_zero_makes_one_attempt(
    build: kit.Build, failure: Reply | Exception, error: type[errors.ProviderError]
) -> None:
    model, server = build(BY_NAME["ollama"], failure, max_retries=0)
    with pytest.raises(error):
        await model.complete(REQUEST)
    assert server.attempts == 1


async def test_rate_limits_that_outlast_the_retries(build: kit.Build) -> None:
    model, server = build(BY_NAME["openai"], fail(429, {"retry-after": "1"}), max_retries=1)
    with pytest.raises(errors.RateLimitError) as caught:
        await model.complete(REQUEST)
    assert server.attempts == 2
    assert caught.value.status == 429
    assert "(after 2 attempts)" in str(caught.value)


async def test_an_unreachable_server(build: kit.Build) -> None:
    model, server = build(BY_NAME["ollama"], httpx.ConnectError("[Errno 111] Connection refused"))
    with pytest.raises(errors.ProviderConnectionError) as caught:
        await model.complete(REQUEST)
    assert server.attempts == 3
    assert caught.value.status is None
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert str(caught.value) == (
        "ollama: cannot reach http://127.0.0.1:11434/api/chat: [Errno 111] Connection refused "
        "(after 3 attempts) (is Ollama running at http://127.0.0.1:11434? start it with "
        "`ollama serve`)"
    )


async def test_a_proxy_error_is_not_retried(build: kit.Build) -> None:
    model, server = build(BY_NAME["openai"], httpx.ProxyError("407 from proxy"))
    with pytest.raises(errors.ProviderConnectionError):
        await model.complete(REQUEST)
    assert server.attempts == 1


# Secrets.


def _no_secret(exc: BaseException, secret: str) -> None:
    for text in (str(exc), repr(exc), repr(exc.args), getattr(exc, "body", None) or ""):
        assert secret not in text


@pytest.mark.parametrize("case", KEYED_CASES, ids=str)
async def test_the_key_never_reaches_an_error(build: kit.Build, case: Case) -> None:
    assert case.key is not None
    echo = {"error": {"message": f"key {case.key} is not valid for https://x/?key={case.key}"}}
    model, _ = build(case, fail(401, body=echo))
    with pytest.raises(errors.AuthenticationError) as caught:
        await model.complete(REQUEST)
    _no_secret(caught.value, case.key)
    assert "[REDACTED]" in str(caught.value)
    assert "[REDACTED]" in (caught.value.body or "")

    model, _ = build(case, httpx.ConnectError(f"refused while sending {case.key}"), max_retries=0)
    with pytest.raises(errors.ProviderConnectionError) as refused:
        await model.complete(REQUEST)
    _no_secret(refused.value, case.key)


@pytest.mark.parametrize("status", [400, 200])
async def test_a_key_where_the_message_is_cut_is_still_redacted(
    build: kit.Build, status: int
) -> None:
    case = BY_NAME["anthropic"]
    assert case.key is not None
    echo = {"error": {"message": "x" * 290 + case.key + "y" * 50}}
    model, _ = build(case, Reply(status, echo))
    with pytest.raises(errors.ProviderError) as caught:
        await model.complete(REQUEST)
    _no_secret(caught.value, case.key)
    assert case.key[:6] not in str(caught.value)


async def test_query_keys_and_bearer_tokens_are_redacted_too(build: kit.Build) -> None:
    text = "GET https://h/v1?api-key=other-secret-1&x=1 Authorization: Bearer tok-secret-2"
    model, _ = build(BY_NAME["openai"], Reply(500, text=text), max_retries=0)
    with pytest.raises(errors.ServerError) as caught:
        await model.complete(REQUEST)
    for secret in ("other-secret-1", "tok-secret-2"):
        _no_secret(caught.value, secret)
    assert "api-key=[REDACTED]&x=1" in (caught.value.body or "")


async def test_a_long_body_is_cut(build: kit.Build) -> None:
    model, _ = build(BY_NAME["openai"], Reply(400, text="x" * 20_000))
    with pytest.raises(errors.BadRequestError) as caught:
        await model.complete(REQUEST)
    assert len(caught.value.body or "") == 4096
    assert len(str(caught.value)) < 400


# Real HTTP on loopback.


class _Handler(BaseHTTPRequestHandler):
    """Chat Completions: a 429 first, then an answer; records what it was sent."""

    seen: ClassVar[list[tuple[str, str, dict[str, object]]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = json.loads(self.rfile.read(length))
        type(self).seen.append((self.path, self.headers.get("authorization", ""), body))
        if len(type(self).seen) == 1:
            payload, status, extra = (
                b'{"error": {"message": "slow down"}}',
                429,
                {"retry-after": "0"},
            )
        else:
            payload, status, extra = json.dumps(OPENAI_REPLY).encode(), 200, {}
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def loopback() -> Iterator[str]:
    _Handler.seen = []
    with loopback_server(_Handler) as url:
        yield url


async def test_over_real_http_a_429_then_an_answer(loopback: str) -> None:
    async with httpx.AsyncClient() as client:
        model = create_chat_model(
            "openai-compatible",
            "local-model",
            client=client,
            base_url=loopback,
            api_key="loopback-key-77",
            env={},
        )
        response = await model.complete(REQUEST)
    assert response.text == TEXT
    assert response.usage.cache_read_tokens == 900
    assert [(path, auth) for path, auth, _ in _Handler.seen] == [
        ("/v1/chat/completions", "Bearer loopback-key-77")
    ] * 2
    assert _Handler.seen[1][2]["model"] == "local-model"
