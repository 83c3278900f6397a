"""Azure OpenAI: Chat Completions behind a deployment URL.

``POST {endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...`` with the key
in the ``api-key`` header. The model name *is* the deployment name. The body and the answer are
OpenAI's, so this module reuses :class:`~autoresearch.providers.openai.OpenAIModel` and only
changes the address, the header and, for API versions that know it, the length field.
"""

from __future__ import annotations

from urllib.parse import quote

from autoresearch.providers._http import Hints
from autoresearch.providers._wire import Settings
from autoresearch.providers.base import ChatModel
from autoresearch.providers.openai import OpenAIModel

__all__ = ["DEFAULT_API_VERSION", "AzureOpenAIModel", "create"]

DEFAULT_API_VERSION = "2024-10-21"
"""The newest generally available data-plane API version; override with ``api_version``."""


def _knows_max_completion_tokens(api_version: str) -> bool:
    """Whether ``api_version`` takes ``max_completion_tokens`` (previews since 2024-09-01)."""
    if api_version.endswith("-preview"):
        return api_version >= "2024-09-01"
    return api_version > DEFAULT_API_VERSION


class AzureOpenAIModel(OpenAIModel):
    """A deployment on an Azure OpenAI resource."""

    def __init__(self, settings: Settings, *, api_version: str) -> None:
        super().__init__(
            settings,
            hints=Hints(
                not_found=f"check the deployment name {settings.model!r}, the endpoint "
                f"{settings.base_url} and the API version {api_version}"
            ),
        )
        self.api_version = api_version
        if _knows_max_completion_tokens(api_version):
            self.max_tokens_field = "max_completion_tokens"

    def __repr__(self) -> str:
        return (
            f"AzureOpenAIModel(provider={self.provider!r}, model={self.model!r}, "
            f"base_url={self.base_url!r}, api_version={self.api_version!r})"
        )

    def endpoint(self) -> str:
        """The deployment's chat-completions URL with the ``api-version`` query."""
        deployment = quote(self.model, safe="")
        return (
            f"{self.base_url}/openai/deployments/{deployment}/chat/completions"
            f"?api-version={quote(self.api_version, safe='')}"
        )

    async def headers(self) -> dict[str, str]:
        """The key in ``api-key``."""
        return {"api-key": self._settings.api_key or ""}


def create(settings: Settings) -> ChatModel:
    """An :class:`AzureOpenAIModel`; the API version comes from options, env or the default."""
    api_version = settings.setting("api_version", "AZURE_OPENAI_API_VERSION")
    return AzureOpenAIModel(settings, api_version=api_version or DEFAULT_API_VERSION)
