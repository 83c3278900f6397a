"""OpenAI's Chat Completions (``POST {base}/chat/completions``) and the servers that speak it.

One wire format, several presets: ``openai``, ``openai-compatible`` (vLLM, LiteLLM, Together,
Groq, ...), ``openrouter``, ``mistral``, ``lm-studio`` and ``llamacpp``. The base URL includes
the version path (``https://api.openai.com/v1``), as in OpenAI's SDKs. The key, when there is
one, goes in ``Authorization: Bearer``; the system text is the first message.

OpenAI itself gets ``max_completion_tokens`` (its reasoning models refuse ``max_tokens``); the
other servers get the older ``max_tokens``, which all of them understand. ``prompt_tokens``
already includes cached tokens; ``prompt_tokens_details.cached_tokens`` says how many.

A reply schema goes in ``response_format``: ``{"type": "json_schema", "json_schema": {...,
"strict": true}}`` in OpenAI's strict form, except for ``llamacpp``, whose server takes
``{"type": "json_object", "schema": ...}`` and turns the schema into a grammar.
"""

from __future__ import annotations

from typing import Any

from autoresearch.providers._http import Hints
from autoresearch.providers._schema import strict_form
from autoresearch.providers._wire import Settings, WireModel, chat_messages, count, usage
from autoresearch.providers.base import ChatModel, ChatRequest, ChatResponse, ReplySchema

__all__ = ["OpenAIModel", "create"]

_LOCAL_SERVERS = frozenset({"openai-compatible", "lm-studio", "llamacpp"})
_ATTRIBUTION = {"site_url": "HTTP-Referer", "site_name": "X-Title"}
"""OpenRouter's optional headers naming the calling app, by the option that sets them."""


class OpenAIModel(WireModel):
    """A model behind a Chat Completions endpoint."""

    max_tokens_field = "max_tokens"
    """The body field that limits the answer's length."""

    def __init__(self, settings: Settings, *, hints: Hints | None = None) -> None:
        if hints is None and settings.provider in _LOCAL_SERVERS:
            hints = Hints(
                not_found=f"check the model name {settings.model!r} and the base URL "
                "(it usually ends in /v1)",
                connect=f"is the server running at {settings.base_url}?",
            )
        super().__init__(settings, hints=hints)
        if settings.provider == "openai":
            self.max_tokens_field = "max_completion_tokens"

    def endpoint(self) -> str:
        """``{base_url}/chat/completions``."""
        return f"{self.base_url}/chat/completions"

    async def headers(self) -> dict[str, str]:
        """A bearer key when there is one; OpenRouter's optional attribution headers."""
        headers: dict[str, str] = {}
        if self._settings.api_key:
            headers["Authorization"] = f"Bearer {self._settings.api_key}"
        for option, header in _ATTRIBUTION.items():
            value = self._settings.options.get(option)
            if value:
                headers[header] = str(value)
        return headers

    def payload(self, request: ChatRequest) -> dict[str, Any]:
        """The system text as the first message, then the conversation."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": chat_messages(request),
            self.max_tokens_field: request.max_tokens,
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.reply_schema is not None:
            body["response_format"] = self.response_format(request.reply_schema)
        return body

    def response_format(self, schema: ReplySchema) -> dict[str, Any]:
        """The ``response_format`` that constrains the reply to ``schema``."""
        if self.provider == "llamacpp":
            return {"type": "json_object", "schema": schema.json_schema}
        spec: dict[str, Any] = {
            "name": schema.name,
            "schema": strict_form(schema.json_schema),
            "strict": True,
        }
        if schema.description:
            spec["description"] = schema.description
        return {"type": "json_schema", "json_schema": spec}

    def read(self, data: dict[str, Any]) -> ChatResponse:
        """The first choice's text, its finish reason, and usage with cached tokens."""
        choice = data["choices"][0]
        content = choice["message"].get("content")
        if isinstance(content, list):  # some servers send content parts
            text = "".join(part.get("text") or "" for part in content if isinstance(part, dict))
        else:
            text = content or ""
        tokens = data.get("usage") or {}
        used = usage(
            prompt=count(tokens, "prompt_tokens"),
            output=count(tokens, "completion_tokens"),
            cache_read=count(tokens, "prompt_tokens_details", "cached_tokens"),
        )
        return self.answer(text, data.get("model"), choice.get("finish_reason"), used)


def create(settings: Settings) -> ChatModel:
    """An :class:`OpenAIModel` for one of the Chat Completions presets."""
    return OpenAIModel(settings)
