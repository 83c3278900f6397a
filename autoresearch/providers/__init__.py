"""Model providers: a registry of names, each backed by one wire-format module.

:func:`create_chat_model` resolves a provider's model, key and base URL (arguments first, then
the environment, then the provider's default) and only then imports the module that speaks the
provider's wire format, so importing this package costs nothing and needs no vendor code.

=====================  ==================  ================================================
provider               wire format         key / base URL
=====================  ==================  ================================================
``anthropic``          Messages API        ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL
``openai``             Chat Completions    OPENAI_API_KEY, OPENAI_BASE_URL
``openai-compatible``  Chat Completions    OPENAI_COMPATIBLE_BASE_URL, OPENAI_COMPATIBLE_API_KEY
``openrouter``         Chat Completions    OPENROUTER_API_KEY
``azure``              Azure deployments   AZURE_OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT
``mistral``            Chat Completions    MISTRAL_API_KEY
``google-ai``          generateContent     GEMINI_API_KEY or GOOGLE_API_KEY, GEMINI_BASE_URL
``google-vertex``      generateContent     GOOGLE_VERTEX_ACCESS_TOKEN or gcloud; project, location
``ollama``             /api/chat           OLLAMA_HOST
``lm-studio``          Chat Completions    LM_STUDIO_BASE_URL
``llamacpp``           Chat Completions    LLAMACPP_BASE_URL
=====================  ==================  ================================================
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from autoresearch.errors import ConfigError
from autoresearch.providers.base import ChatMessage, ChatModel, ChatRequest, ChatResponse

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_MODELS",
    "PROVIDERS",
    "ChatMessage",
    "ChatModel",
    "ChatRequest",
    "ChatResponse",
    "create_chat_model",
]


# The registry, one column per table, every table keyed by provider name.

_WIRE: dict[str, tuple[str, str | None]] = {  # provider: (wire-format module, default model)
    "anthropic": ("anthropic", "claude-sonnet-4-5"),
    "openai": ("openai", "gpt-4.1"),
    "openai-compatible": ("openai", None),
    "openrouter": ("openai", "anthropic/claude-sonnet-4.5"),
    "azure": ("azure", None),
    "mistral": ("openai", "mistral-large-latest"),
    "google-ai": ("google", "gemini-2.5-pro"),
    "google-vertex": ("google", "gemini-2.5-pro"),
    "ollama": ("ollama", None),
    "lm-studio": ("openai", None),
    "llamacpp": ("openai", "default"),  # llama-server answers with the model it loaded
}

_KEYS: dict[str, tuple[str, ...]] = {  # provider: where its key is looked for, in order
    "anthropic": ("ANTHROPIC_API_KEY",),
    "openai": ("OPENAI_API_KEY",),
    "openai-compatible": ("OPENAI_COMPATIBLE_API_KEY",),
    "openrouter": ("OPENROUTER_API_KEY",),
    "azure": ("AZURE_OPENAI_API_KEY",),
    "mistral": ("MISTRAL_API_KEY",),
    "google-ai": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "google-vertex": ("GOOGLE_VERTEX_ACCESS_TOKEN",),
}
_OPTIONAL_KEYS = frozenset(
    {"openai-compatible", "google-vertex", "ollama", "lm-studio", "llamacpp"}
)
"""Providers that work without a key (vertex asks gcloud for a token instead)."""

# Base URLs mean what the vendors' SDKs mean: Anthropic's and Gemini's are hosts (the client adds
# the API path), the Chat Completions ones include the version path (/v1), Ollama's is its host.
_BASE_URLS: dict[str, tuple[str | None, str | None]] = {  # provider: (variable, default)
    "anthropic": ("ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
    "openai": ("OPENAI_BASE_URL", "https://api.openai.com/v1"),
    "openai-compatible": ("OPENAI_COMPATIBLE_BASE_URL", None),
    "openrouter": (None, "https://openrouter.ai/api/v1"),
    "azure": ("AZURE_OPENAI_ENDPOINT", None),
    "mistral": (None, "https://api.mistral.ai/v1"),
    "google-ai": ("GEMINI_BASE_URL", "https://generativelanguage.googleapis.com"),
    "google-vertex": (None, None),  # built from the location
    "ollama": ("OLLAMA_HOST", "http://127.0.0.1:11434"),
    "lm-studio": ("LM_STUDIO_BASE_URL", "http://127.0.0.1:1234/v1"),
    "llamacpp": ("LLAMACPP_BASE_URL", "http://127.0.0.1:8080/v1"),
}

_BASE_URL_EXAMPLES = {
    "openai-compatible": "http://localhost:8000/v1",
    "azure": "https://<resource>.openai.azure.com",
}
"""The providers whose base URL must be given, with an example of one."""

_MODEL_HELP = {
    "openai-compatible": "the name the server knows the model by, for example "
    "'Qwen/Qwen2.5-Coder-7B-Instruct'",
    "azure": "the deployment name, as shown in the Azure portal",
    "ollama": "a model you have pulled, for example 'qwen2.5-coder' (`ollama list`)",
    "lm-studio": "the identifier LM Studio shows for the loaded model",
}
"""Said when a provider without a default model is given none."""

_OPTIONS = {
    "azure": ("api_version",),
    "google-vertex": ("location", "project"),
    "openrouter": ("site_name", "site_url"),
}
"""The provider-specific ``options`` each provider accepts."""

PROVIDERS: tuple[str, ...] = tuple(_WIRE)
"""Every provider name :func:`create_chat_model` accepts (``local`` is the facade's own)."""

DEFAULT_MODELS: Mapping[str, str | None] = {name: row[1] for name, row in _WIRE.items()}
"""The model each provider uses when none is named (``None``: a model must be given)."""


def create_chat_model(
    provider: str,
    model: str | None,
    *,
    client: httpx.AsyncClient,
    api_key: str | None = None,
    base_url: str | None = None,
    max_retries: int = 2,
    env: Mapping[str, str] | None = None,
    options: Mapping[str, Any] | None = None,
) -> ChatModel:
    """The chat model ``provider`` names, sending through ``client``.

    Arguments beat environment variables (``env`` defaults to ``os.environ``), which beat the
    provider's defaults. ``base_url`` means what the vendor's SDK means by it (see the module
    docstring). ``options`` holds provider-specific settings: ``api_version`` (azure),
    ``project`` and ``location`` (google-vertex), ``site_url`` and ``site_name`` (openrouter).
    Keys stay in memory. Raises :class:`ConfigError` naming the field when something is missing.
    """
    if provider not in _WIRE:
        raise ConfigError(
            f"provider: unknown provider {provider!r}; choose one of: {', '.join(PROVIDERS)}",
            field="provider",
        )
    env = os.environ if env is None else env
    options = dict(options or {})
    _check_options(provider, options)
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ConfigError(
            f"max_retries: must be a whole number, 0 or more, not {max_retries!r}",
            field="max_retries",
        )
    module, default_model = _WIRE[provider]
    name = model or default_model
    if not name:
        raise ConfigError(
            f"model: {provider} has no default model; pass model=... (--model): "
            f"{_MODEL_HELP[provider]}",
            field="model",
        )
    key, key_hint = _resolve_key(provider, api_key, env)
    from autoresearch.providers._wire import Settings  # the first wire-side import

    settings = Settings(
        provider=provider,
        model=name,
        client=client,
        base_url=_resolve_base_url(provider, base_url, env),
        api_key=key,
        key_hint=key_hint,
        max_retries=max_retries,
        env=env,
        options=options,
    )
    factory: Callable[[Settings], ChatModel] = importlib.import_module(
        f"{__name__}.{module}"
    ).create
    return factory(settings)


def _check_options(provider: str, options: Mapping[str, Any]) -> None:
    known = _OPTIONS.get(provider, ())
    unknown = sorted(set(options) - set(known))
    if unknown:
        takes = ", ".join(known) if known else "none"
        raise ConfigError(
            f"options: {provider} does not take {', '.join(unknown)} (it takes: {takes})",
            field="options",
        )


def _resolve_key(
    provider: str, api_key: str | None, env: Mapping[str, str]
) -> tuple[str | None, str]:
    """The key and what to check when it is refused."""
    if api_key and api_key.strip():
        return api_key.strip(), "check the api_key argument"
    variables = _KEYS.get(provider, ())
    for var in variables:
        value = env.get(var, "").strip()
        if value:
            return value, f"check {var}"
    where = " or ".join(variables)
    if provider not in _OPTIONAL_KEYS:
        raise ConfigError(
            f"provider: {provider} needs an API key: set {where} or pass api_key=...",
            field="provider",
        )
    return None, (f"set {where} or pass api_key=..." if where else "pass api_key=...")


def _resolve_base_url(provider: str, base_url: str | None, env: Mapping[str, str]) -> str | None:
    variable, default = _BASE_URLS[provider]
    url = (base_url or (env.get(variable) if variable else None) or "").strip() or default
    if url is None and provider in _BASE_URL_EXAMPLES:
        raise ConfigError(
            f"base_url: {provider} needs a base URL: set {variable} or pass "
            f"base_url=... (--base-url), for example {_BASE_URL_EXAMPLES[provider]}",
            field="base_url",
        )
    return url.rstrip("/") if url else None
