"""Ollama's native chat endpoint (``POST {host}/api/chat``).

The host is what ``OLLAMA_HOST`` means to Ollama itself: ``http://127.0.0.1:11434`` by default;
a bare ``host`` or ``host:port`` gets ``http://`` (and port 11434 when none is given). Answers
are requested whole (``stream: false``); the length limit and temperature go in ``options``
(``num_predict``, ``temperature``). No key is needed; one given (for a server behind an
authenticating proxy) is sent as a bearer token. A reply schema goes in ``format``, which
Ollama turns into a grammar.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from autoresearch.providers._http import Hints
from autoresearch.providers._wire import Settings, WireModel, chat_messages, count, usage
from autoresearch.providers.base import ChatModel, ChatRequest, ChatResponse

__all__ = ["DEFAULT_PORT", "OllamaModel", "create", "normalise_host"]

DEFAULT_PORT = 11434
"""The port Ollama listens on unless told otherwise."""


def normalise_host(host: str) -> str:
    """``host`` as a URL the way Ollama reads ``OLLAMA_HOST``: scheme and port filled in."""
    host = host.strip().rstrip("/")
    if "://" in host:
        return host
    name, _, rest = host.partition("/")
    if ":" not in name.rsplit("]", 1)[-1]:
        name = f"{name}:{DEFAULT_PORT}"
    return f"http://{name}" + (f"/{rest}" if rest else "")


class OllamaModel(WireModel):
    """A model served by Ollama."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            settings,
            hints=Hints(
                not_found=f"is the model pulled? run `ollama pull {settings.model}`",
                connect=f"is Ollama running at {settings.base_url}? start it with `ollama serve`",
            ),
        )

    def endpoint(self) -> str:
        """``{host}/api/chat``."""
        return f"{self.base_url}/api/chat"

    async def headers(self) -> dict[str, str]:
        """A bearer key only when one was given."""
        key = self._settings.api_key
        return {"Authorization": f"Bearer {key}"} if key else {}

    def payload(self, request: ChatRequest) -> dict[str, Any]:
        """System message first, the conversation, ``stream: false``, ``options``, ``format``."""
        options: dict[str, Any] = {"num_predict": request.max_tokens}
        if request.temperature is not None:
            options["temperature"] = request.temperature
        body: dict[str, Any] = {
            "model": self.model,
            "messages": chat_messages(request),
            "stream": False,
            "options": options,
        }
        if request.reply_schema is not None:
            body["format"] = request.reply_schema.json_schema
        return body

    def read(self, data: dict[str, Any]) -> ChatResponse:
        """``message.content``, ``done_reason`` and the two eval counts."""
        used = usage(prompt=count(data, "prompt_eval_count"), output=count(data, "eval_count"))
        text = data["message"].get("content") or ""
        return self.answer(text, data.get("model"), data.get("done_reason"), used)


def create(settings: Settings) -> ChatModel:
    """An :class:`OllamaModel` for resolved ``settings`` (the host normalised)."""
    host = normalise_host(settings.base_url or "")
    return OllamaModel(dataclasses.replace(settings, base_url=host))
