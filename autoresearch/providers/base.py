"""The chat-model protocol every provider implements, and its request and response types.

A provider turns one :class:`ChatRequest` into one :class:`ChatResponse` over HTTP. The
``system`` text is the stable part of a prompt (the research program, the read-only files):
providers that support prompt caching mark it as cacheable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import Field

from autoresearch._model import CamelModel
from autoresearch.results import Usage

__all__ = ["ChatMessage", "ChatModel", "ChatRequest", "ChatResponse", "ReplySchema"]


class ChatMessage(CamelModel):
    """One turn of a conversation."""

    role: Literal["user", "assistant"]
    content: str


class ReplySchema(CamelModel):
    """The shape a reply must have, as a JSON schema, for providers that can enforce it.

    Write it in the plain subset every provider understands: ``type``, ``properties``,
    ``required``, ``items`` and ``description``, with a property left out of ``required`` when
    it is optional. Each wire format adapts it (OpenAI's strict mode wants every property
    required and the optional ones nullable; Gemini wants upper-case type names).
    """

    if TYPE_CHECKING:  # the NeuroLink spellings, read through CamelModel.__getattr__
        jsonSchema: ClassVar[dict[str, Any]]

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    """Names the schema on the wire (OpenAI's ``json_schema.name``, Anthropic's tool)."""
    description: str = ""
    json_schema: dict[str, Any]
    """The schema of the reply: a JSON object's."""


class ChatRequest(CamelModel):
    """What to ask the model."""

    if TYPE_CHECKING:  # the NeuroLink spellings, read through CamelModel.__getattr__
        maxTokens: ClassVar[int]
        replySchema: ClassVar[ReplySchema | None]

    system: str = ""
    """Stable instructions and context; cached where the provider supports it."""
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int = Field(default=4096, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    reply_schema: ReplySchema | None = None
    """Constrain the reply to this schema where the provider can (the reply text is then the
    JSON document). A server that refuses it is asked again without it, and not sent it again."""


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
