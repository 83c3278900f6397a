"""The skeleton every wire format fills in, and the settings the registry hands it.

A wire format says four things: where a request goes (:meth:`WireModel.endpoint`), which
headers carry the credentials (:meth:`WireModel.headers`), how a :class:`ChatRequest` looks on
the wire (:meth:`WireModel.payload`, its reply schema included) and how to read the answer
(:meth:`WireModel.read`). The sending, retrying and error mapping are the same for all of them
and live in :mod:`autoresearch.providers._http`. :meth:`WireModel.complete` holds the one rule
about reply schemas: a request whose schema the server refuses (400, 422 or 500) is sent again
without it, and if that goes through, the model sends no schema for the rest of its life
(``schema_refused``).
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from autoresearch.errors import BadRequestError, ConfigError, ProviderError, ServerError
from autoresearch.providers._http import BODY_LIMIT, Hints, JsonClient
from autoresearch.providers.base import ChatRequest, ChatResponse
from autoresearch.results import Usage

__all__ = ["Settings", "WireModel", "chat_messages", "count", "usage"]

logger = logging.getLogger("autoresearch")

_SCHEMA_REFUSALS = frozenset({400, 422, 500})
"""The statuses with which a server says it does not take a request's reply schema (some,
llama-cpp-python's among them, answer an option they do not know with a 500)."""


@dataclass(frozen=True)
class Settings:
    """Everything the registry resolved for one model: arguments first, then the environment."""

    provider: str
    model: str
    client: httpx.AsyncClient = field(repr=False)
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    key_hint: str = ""
    """What to check after a 401/403, such as ``check ANTHROPIC_API_KEY``."""
    max_retries: int = 2
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    options: Mapping[str, Any] = field(default_factory=dict)

    def setting(self, option: str, env_var: str, default: str | None = None) -> str | None:
        """A provider-specific setting: ``options[option]``, else ``env[env_var]``, else default."""
        value = self.options.get(option)
        if value is None or value == "":
            value = self.env.get(env_var) or default
        return None if value is None else str(value)


def count(data: Any, *path: str) -> int:
    """The integer at ``path`` inside nested JSON objects, 0 where it is missing or null."""
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, int) and not isinstance(data, bool) else 0


def chat_messages(request: ChatRequest) -> list[dict[str, str]]:
    """The system text as a leading ``system`` message (when there is one), then the turns."""
    messages = [{"role": "system", "content": request.system}] if request.system else []
    return messages + [{"role": m.role, "content": m.content} for m in request.messages]


def usage(*, prompt: int, output: int, cache_read: int = 0, cache_write: int = 0) -> Usage:
    """The usage of one successful call (``calls=1``).

    ``prompt`` counts every input token, including those read from or written to a cache.
    """
    return Usage(
        input_tokens=prompt,
        output_tokens=output,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        calls=1,
    )


class WireModel(ABC):
    """A chat model behind one HTTP wire format; subclasses describe the format.

    ``provider`` and ``model`` name it in records; ``base_url`` is where it sends. The API key
    lives only in memory, in the subclass's headers, and never in ``repr``.
    """

    def __init__(self, settings: Settings, *, hints: Hints | None = None) -> None:
        """``hints`` replace the default advice (check the key, the model name, the address)."""
        url = settings.base_url or ""
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"base_url: {settings.provider} needs an http:// or https:// URL, not {url!r}",
                field="base_url",
            )
        self.provider = settings.provider
        self.model = settings.model
        self.base_url = settings.base_url
        self._settings = settings
        self.schema_refused = False
        """The server refused a reply schema once; requests go without one from then on."""
        self._http = JsonClient(
            settings.provider,
            settings.client,
            max_retries=settings.max_retries,
            secrets=(settings.api_key,),
            hints=Hints(
                auth=(hints and hints.auth) or settings.key_hint,
                not_found=(hints and hints.not_found) or f"check the model name {settings.model!r}",
                connect=(hints and hints.connect) or f"check that {settings.base_url} is reachable",
            ),
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(provider={self.provider!r}, model={self.model!r}, "
            f"base_url={self.base_url!r})"
        )

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Send ``request`` (with retries) and return the answer; raise ProviderError on failure.

        A reply schema the server refuses is dropped: the request is sent again without it
        and later requests leave it out (the proposer then reads replies leniently).
        """
        url = self.endpoint()
        if request.reply_schema is not None and self.schema_refused:
            request = request.model_copy(update={"reply_schema": None})
        try:
            data = await self._http.post(url, self.payload(request), await self.headers())
        except (BadRequestError, ServerError) as exc:
            if request.reply_schema is None or exc.status not in _SCHEMA_REFUSALS:
                raise
            plain = request.model_copy(update={"reply_schema": None})
            data = await self._http.post(url, self.payload(plain), await self.headers())
            self.schema_refused = True  # the same request without the schema went through
            logger.warning(
                "%s: the server refused the reply schema (%s); sending requests without it "
                "from now on and reading the replies leniently",
                self.provider,
                exc,
            )
        try:
            return self.read(data)
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            raise self.answer_error(
                f"the answer did not have the expected shape ({type(exc).__name__}: {exc})", data
            ) from exc

    def answer_error(self, problem: str, data: dict[str, Any]) -> ProviderError:
        """A :class:`ProviderError` about a 200 answer that cannot be used, secrets removed."""
        return ProviderError(
            self._http.redact(f"{self.provider}: {problem}"),
            provider=self.provider,
            status=200,
            body=self._http.redact(json.dumps(data))[:BODY_LIMIT],
        )

    def answer(self, text: str, served: Any, stop: Any, used: Usage) -> ChatResponse:
        """A :class:`ChatResponse`; ``served`` is the model the server named, if it did."""
        return ChatResponse(
            text=text,
            model=served if isinstance(served, str) and served else self.model,
            stop_reason=stop if isinstance(stop, str) else None,
            usage=used,
        )

    @abstractmethod
    def endpoint(self) -> str:
        """The URL a request is POSTed to."""

    async def headers(self) -> dict[str, str]:
        """The request headers (credentials included); none by default."""
        return {}

    @abstractmethod
    def payload(self, request: ChatRequest) -> dict[str, Any]:
        """``request`` as this wire format's JSON body."""

    @abstractmethod
    def read(self, data: dict[str, Any]) -> ChatResponse:
        """The decoded JSON answer as a :class:`ChatResponse`."""
