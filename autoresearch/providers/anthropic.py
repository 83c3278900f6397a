"""Anthropic's Messages API (``POST {base}/v1/messages``).

The key goes in ``x-api-key``, the API version in ``anthropic-version``. The system text is
sent as one text block marked ``cache_control: {"type": "ephemeral"}``, so the stable part of a
prompt (the research program, the read-only files) is cached between calls. Anthropic counts
cached tokens apart from ``input_tokens``; here they are added back, so ``Usage.input_tokens``
is the whole prompt and the cache counts say how much of it the cache served or stored.

A reply schema becomes a tool the model is made to call (``tool_choice: {"type": "tool"}``)
whose ``input_schema`` is the schema; the tool call's input, as JSON, is the reply text.
"""

from __future__ import annotations

import json
from typing import Any

from autoresearch.providers._wire import Settings, WireModel, count, usage
from autoresearch.providers.base import ChatModel, ChatRequest, ChatResponse

__all__ = ["API_VERSION", "AnthropicModel", "create"]

API_VERSION = "2023-06-01"
"""The ``anthropic-version`` header value."""


class AnthropicModel(WireModel):
    """A Claude model over the Messages API."""

    def endpoint(self) -> str:
        """``{base_url}/v1/messages``; the base URL is the host, as in Anthropic's SDKs."""
        return f"{self.base_url}/v1/messages"

    async def headers(self) -> dict[str, str]:
        """The key and the API version."""
        return {"x-api-key": self._settings.api_key or "", "anthropic-version": API_VERSION}

    def payload(self, request: ChatRequest) -> dict[str, Any]:
        """Messages as given; the system text as one cacheable block; the schema as a tool."""
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        if request.system:
            body["system"] = [
                {"type": "text", "text": request.system, "cache_control": {"type": "ephemeral"}}
            ]
        if request.temperature is not None:
            body["temperature"] = request.temperature
        schema = request.reply_schema
        if schema is not None:
            tool: dict[str, Any] = {"name": schema.name, "input_schema": schema.json_schema}
            if schema.description:
                tool["description"] = schema.description
            body["tools"] = [tool]
            body["tool_choice"] = {"type": "tool", "name": schema.name}
        return body

    def read(self, data: dict[str, Any]) -> ChatResponse:
        """The text (a forced tool call's input as JSON), stop reason, usage with cache counts."""
        blocks = data["content"]
        called = [block["input"] for block in blocks if block.get("type") == "tool_use"]
        if called:
            text = json.dumps(called[0], ensure_ascii=False)
        else:
            text = "".join(block["text"] for block in blocks if block.get("type") == "text")
        tokens = data.get("usage") or {}
        read = count(tokens, "cache_read_input_tokens")
        written = count(tokens, "cache_creation_input_tokens")
        used = usage(
            prompt=count(tokens, "input_tokens") + read + written,
            output=count(tokens, "output_tokens"),
            cache_read=read,
            cache_write=written,
        )
        return self.answer(text, data.get("model"), data.get("stop_reason"), used)


def create(settings: Settings) -> ChatModel:
    """An :class:`AnthropicModel` for resolved ``settings``."""
    return AnthropicModel(settings)
