"""The chat-model protocol every provider implements, and its request and response types.

A provider turns one :class:`ChatRequest` into one :class:`ChatResponse` over HTTP. The
``system`` text is the stable part of a prompt (the research program, the read-only files):
providers that support prompt caching mark it as cacheable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import Field

from autoresearch._model import CamelModel
from autoresearch.results import Usage

__all__ = ["ChatMessage", "ChatModel", "ChatRequest", "ChatResponse"]


class ChatMessage(CamelModel):
    """One turn of a conversation."""

    role: Literal["user", "assistant"]
    content: str


class ChatRequest(CamelModel):
    """What to ask the model."""

    if TYPE_CHECKING:  # the NeuroLink spellings, read through CamelModel.__getattr__
        maxTokens: ClassVar[int]

    system: str = ""
    """Stable instructions and context; cached where the provider supports it."""
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int = Field(default=4096, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)


class ChatResponse(CamelModel):
    """What the model answered, with what it cost."""

    if TYPE_CHECKING:  # the NeuroLink spellings, read through CamelModel.__getattr__
        stopReason: ClassVar[str | None]

    text: str
    usage: Usage = Field(default_factory=Usage)
    model: str | None = None
    stop_reason: str | None = None


@runtime_checkable
class ChatModel(Protocol):
    """A model behind one wire format. ``provider`` and ``model`` name it in records."""

    provider: str
    model: str

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Send ``request`` (with retries) and return the answer; raise ProviderError on failure."""
        ...
