"""The HTTP plumbing every wire format shares: POST JSON, retry what is worth retrying, map errors.

One :class:`JsonClient` per chat model wraps the facade's shared ``httpx.AsyncClient``. It sends
one JSON request, retries connection failures, timeouts, 408, 409, 429 and 5xx with exponential
backoff and jitter (a ``retry-after`` or ``retry-after-ms`` header wins, up to 60 s), and turns
whatever is left into the typed :class:`~autoresearch.errors.ProviderError` subclasses. This is
the one place where httpx exceptions become autoresearch exceptions. Every retry is logged (a
warning on the ``autoresearch`` logger) with its reason and its delay, so a night slowed down by
429s leaves a trace.

Secrets: every message and body an error carries passes through :func:`redact`, which removes
the model's API key (wherever the server echoed it), ``key=``-style query parameters and bearer
tokens. Request headers are never logged or copied into errors.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import anyio
import httpx

from autoresearch.errors import (
    AuthenticationError,
    BadRequestError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    ServerError,
)

__all__ = [
    "BODY_LIMIT",
    "MAX_RETRY_AFTER",
    "REDACTED",
    "Hints",
    "JsonClient",
    "backoff_delay",
    "redact",
    "retry_after",
    "sleep",
]

BODY_LIMIT = 4096
"""How many characters of a response body an error keeps."""
MAX_RETRY_AFTER = 60.0
"""The longest ``retry-after`` we honour, in seconds; longer requests are cut to this."""
BACKOFF_BASE = 0.5
"""The first backoff delay in seconds; each further retry doubles it (with jitter)."""
BACKOFF_CAP = 8.0
"""The longest backoff delay in seconds."""
REDACTED = "[REDACTED]"
"""What a secret becomes in error text."""

logger = logging.getLogger("autoresearch")

sleep: Callable[[float], Awaitable[None]] = anyio.sleep
"""How a retry waits. Looked up at each retry, so tests can swap it for a recorder."""

_RETRY_STATUSES = frozenset({408, 409, 429})
_RETRYABLE_TRANSPORT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_BAD_REQUEST_STATUSES = frozenset({400, 404, 405, 413, 415, 422})
_QUERY_SECRET = re.compile(r"(?i)([?&;](?:key|api[-_]?key|access[-_]?token|token)=)[^&#\s\"'<>]*")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+")
_DETAIL_LIMIT = 300


@dataclass(frozen=True)
class Hints:
    """What to tell the user after a failure, by kind; empty strings add nothing."""

    auth: str = ""
    """After 401/403: where the key came from (``check ANTHROPIC_API_KEY``)."""
    not_found: str = ""
    """After 404: usually the model or deployment name."""
    connect: str = ""
    """When no response arrived: the address that was tried."""


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret, ``key=...`` query parameter and bearer token replaced."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _QUERY_SECRET.sub(rf"\g<1>{REDACTED}", text)
    return _BEARER.sub(rf"\g<1>{REDACTED}", text)


def retry_after(headers: httpx.Headers) -> float | None:
    """The wait the server asked for (``retry-after-ms`` or ``retry-after``), cut to 60 s.

    ``retry-after`` may be a number of seconds or an HTTP date. ``None`` when neither header
    is present or readable.
    """
    seconds: float | None = None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        seconds = _number(raw_ms)
        if seconds is not None:
            seconds /= 1000.0
    raw = headers.get("retry-after")
    if seconds is None and raw is not None:
        seconds = _number(raw)
        if seconds is None:
            seconds = _seconds_until(raw)
    if seconds is None or not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def backoff_delay(retry: int) -> float:
    """The delay before retry number ``retry`` (0-based): doubling from 0.5 s, with jitter."""
    delay: float = min(BACKOFF_CAP, BACKOFF_BASE * 2.0**retry)
    return delay * random.uniform(0.75, 1.0)


def _number(raw: str) -> float | None:
    try:
        return float(raw)
    except ValueError:
        return None


def _seconds_until(raw: str) -> float | None:
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - datetime.now(UTC)).total_seconds()


def _should_retry(response: httpx.Response) -> bool:
    forced: str | None = response.headers.get("x-should-retry")
    if forced in ("true", "false"):
        return forced == "true"
    return response.status_code in _RETRY_STATUSES or response.status_code >= 500


def _error_class(status: int) -> type[ProviderError]:
    if status in (401, 403):
        return AuthenticationError
    if status == 429:
        return RateLimitError
    if status >= 500 or status in _RETRY_STATUSES:
        return ServerError
    if status in _BAD_REQUEST_STATUSES:
        return BadRequestError
    return ProviderError


def _message_in(data: Any) -> str | None:
    """The human part of an error document, whichever vendor shaped it."""
    if isinstance(data, str):
        return data or None
    if isinstance(data, list):
        return _message_in(data[0]) if data else None
    if isinstance(data, dict):
        for key in ("error", "message", "detail", "msg"):
            found = _message_in(data.get(key))
            if found:
                return found
    return None


def _detail_of(text: str) -> str:
    """A one-line summary of a response body: its error message if it is JSON, else its text."""
    try:
        found = _message_in(json.loads(text))
    except ValueError:
        found = None
    line = " ".join((found or text).split())
    if len(line) > _DETAIL_LIMIT:
        line = line[: _DETAIL_LIMIT - 1] + "…"
    return line


def _exc_reason(exc: Exception) -> str:
    """An exception's message on one line, or its class name when it has none."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _status_line(response: httpx.Response) -> str:
    reason = response.reason_phrase or httpx.codes.get_reason_phrase(response.status_code)
    return f"{response.status_code} {reason}".strip()


class JsonClient:
    """Sends one JSON request for one provider, with retries, redaction and typed errors."""

    def __init__(
        self,
        provider: str,
        client: httpx.AsyncClient,
        *,
        max_retries: int = 2,
        secrets: Iterable[str | None] = (),
        hints: Hints | None = None,
    ) -> None:
        self.provider = provider
        self.max_retries = max_retries
        self.hints = hints or Hints()
        self._client = client
        self._secrets: set[str] = {s for s in secrets if s}

    def __repr__(self) -> str:
        return f"JsonClient(provider={self.provider!r}, max_retries={self.max_retries})"

    def add_secret(self, secret: str) -> None:
        """Also redact ``secret`` (a token obtained after construction) from error text."""
        if secret:
            self._secrets.add(secret)

    def redact(self, text: str) -> str:
        """``text`` with this client's secrets removed (see :func:`redact`)."""
        return redact(text, self._secrets)

    async def post(
        self, url: str, body: Mapping[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        """POST ``body`` as JSON to ``url`` and return the decoded JSON object of the answer.

        Retries up to ``max_retries`` times after the first attempt; raises a
        :class:`ProviderError` subclass once no retry is left or the failure is final.
        """
        attempt = 1
        while True:
            try:
                response = await self._client.post(url, json=body, headers=dict(headers))
            except _RETRYABLE_TRANSPORT as exc:
                if attempt > self.max_retries:
                    raise self._connection_error(url, exc, attempt) from exc
                delay = backoff_delay(attempt - 1)
                reason = f"cannot reach {url}: {_exc_reason(exc)}"
            except httpx.TransportError as exc:  # a proxy or protocol mistake: retrying won't help
                raise self._connection_error(url, exc, attempt) from exc
            else:
                if response.is_success:
                    return self._decode(response)
                if attempt > self.max_retries or not _should_retry(response):
                    raise self._status_error(response, attempt)
                waited = retry_after(response.headers)
                delay = backoff_delay(attempt - 1) if waited is None else waited
                detail = self._detail(response)
                reason = _status_line(response) + (f": {detail}" if detail else "")
                if waited is not None:
                    reason += " (the server asked to wait)"
            logger.warning(
                "%s: %s; retry %d of %d in %.1f s",
                self.provider,
                self.redact(reason),
                attempt,
                self.max_retries,
                delay,
            )
            await sleep(delay)
            attempt += 1

    def _detail(self, response: httpx.Response) -> str:
        """The body's one-line summary; redacted before it is cut, so no key is half-kept."""
        return _detail_of(self.redact(response.text))

    def _fail(
        self,
        cls: type[ProviderError],
        message: str,
        *,
        status: int | None = None,
        body: str | None = None,
    ) -> ProviderError:
        """An error of class ``cls`` whose message and body have the secrets removed."""
        safe_body = None if body is None else self.redact(body)[:BODY_LIMIT]
        return cls(self.redact(message), provider=self.provider, status=status, body=safe_body)

    def _with_context(self, message: str, attempts: int, hint: str) -> str:
        if attempts > 1:
            message += f" (after {attempts} attempts)"
        if hint:
            message += f" ({hint})"
        return message

    def _connection_error(self, url: str, exc: httpx.HTTPError, attempts: int) -> ProviderError:
        message = f"{self.provider}: cannot reach {url}: {_exc_reason(exc)}"
        return self._fail(
            ProviderConnectionError, self._with_context(message, attempts, self.hints.connect)
        )

    def _status_error(self, response: httpx.Response, attempts: int) -> ProviderError:
        status = response.status_code
        detail = self._detail(response)
        message = f"{self.provider}: {_status_line(response)}" + (f": {detail}" if detail else "")
        hint = {401: self.hints.auth, 403: self.hints.auth, 404: self.hints.not_found}
        return self._fail(
            _error_class(status),
            self._with_context(message, attempts, hint.get(status, "")),
            status=status,
            body=response.text,
        )

    def _decode(self, response: httpx.Response) -> dict[str, Any]:
        line = _status_line(response)
        try:
            data = response.json()
        except ValueError as exc:
            snippet = self._detail(response) or "an empty body"
            raise self._fail(
                ProviderError,
                f"{self.provider}: {line} but the body is not JSON: {snippet}",
                status=response.status_code,
                body=response.text,
            ) from exc
        if not isinstance(data, dict):
            raise self._fail(
                ProviderError,
                f"{self.provider}: {line} but the body is not a JSON object",
                status=response.status_code,
                body=response.text,
            )
        if data.get("error"):  # some gateways report a failure inside a 200 response
            raise self._fail(
                ProviderError,
                f"{self.provider}: {line} carrying an error: {self._detail(response)}",
                status=response.status_code,
                body=response.text,
            )
        return data
