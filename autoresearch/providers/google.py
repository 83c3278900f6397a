"""Gemini's ``generateContent``, on the Gemini API (``google-ai``) and on Vertex AI.

Both speak the same body: ``contents`` with roles ``user``/``model`` and text ``parts``, the
system text as ``systemInstruction``, the limits in ``generationConfig``. They differ in address
and credentials:

- ``google-ai``: ``POST {base}/v1beta/models/{model}:generateContent`` with the key in
  ``x-goog-api-key`` (never in the URL). The base URL is the host, as ``GEMINI_BASE_URL`` is.
- ``google-vertex``: ``POST https://{location}-aiplatform.googleapis.com/v1/projects/{project}/
  locations/{location}/publishers/google/models/{model}:generateContent`` (the ``global``
  location uses ``aiplatform.googleapis.com``) with ``Authorization: Bearer <access token>``.
  The token is the ``api_key`` argument, else ``GOOGLE_VERTEX_ACCESS_TOKEN``, else what
  ``gcloud auth print-access-token`` prints at the first call (fetched again after 45 minutes,
  as such tokens live an hour).

``promptTokenCount`` already includes cached tokens; thinking tokens are billed as output, so
``thoughtsTokenCount`` is added to the output count. A reply schema goes in
``generationConfig`` as ``responseMimeType: application/json`` and ``responseSchema``.
"""

from __future__ import annotations

import dataclasses
import subprocess
import time
from typing import Any
from urllib.parse import quote

import anyio

from autoresearch.errors import ConfigError
from autoresearch.providers._http import Hints
from autoresearch.providers._schema import gemini_form
from autoresearch.providers._wire import Settings, WireModel, count, usage
from autoresearch.providers.base import ChatModel, ChatRequest, ChatResponse

__all__ = ["DEFAULT_LOCATION", "GeminiModel", "VertexModel", "create"]

DEFAULT_LOCATION = "us-central1"
"""The Vertex AI location used when neither ``location`` nor GOOGLE_CLOUD_LOCATION is set."""
TOKEN_LIFETIME = 45 * 60.0
"""How long a token from gcloud is used before asking gcloud again, in seconds."""

_NO_TOKEN = (
    "provider: google-vertex needs an access token: set GOOGLE_VERTEX_ACCESS_TOKEN, pass "
    "api_key=..., or install the gcloud CLI and run `gcloud auth login`"
)


class GeminiModel(WireModel):
    """A Gemini model on the Gemini API (``generativelanguage.googleapis.com``)."""

    def endpoint(self) -> str:
        """``{base_url}/v1beta/models/{model}:generateContent``."""
        name = quote(self.model.removeprefix("models/"), safe="")
        return f"{self.base_url}/v1beta/models/{name}:generateContent"

    async def headers(self) -> dict[str, str]:
        """The key in ``x-goog-api-key``."""
        return {"x-goog-api-key": self._settings.api_key or ""}

    def payload(self, request: ChatRequest) -> dict[str, Any]:
        """``contents`` (assistant turns as ``model``), ``systemInstruction``, limits, schema."""
        config: dict[str, Any] = {"maxOutputTokens": request.max_tokens}
        if request.temperature is not None:
            config["temperature"] = request.temperature
        if request.reply_schema is not None:
            config["responseMimeType"] = "application/json"
            config["responseSchema"] = gemini_form(request.reply_schema.json_schema)
        body: dict[str, Any] = {
            "contents": [
                {
                    "role": "model" if m.role == "assistant" else "user",
                    "parts": [{"text": m.content}],
                }
                for m in request.messages
            ],
            "generationConfig": config,
        }
        if request.system:
            body["systemInstruction"] = {"parts": [{"text": request.system}]}
        return body

    def read(self, data: dict[str, Any]) -> ChatResponse:
        """The first candidate's text parts (thoughts left out) and ``usageMetadata``."""
        candidates = data.get("candidates") or []
        if not candidates:
            reason = (data.get("promptFeedback") or {}).get("blockReason") or "no candidates"
            raise self.answer_error(f"no answer was generated ({reason})", data)
        candidate = candidates[0]
        parts = (candidate.get("content") or {}).get("parts") or []
        text = "".join(p.get("text") or "" for p in parts if not p.get("thought"))
        meta = data.get("usageMetadata") or {}
        thoughts = count(meta, "thoughtsTokenCount")  # billed as output
        used = usage(
            prompt=count(meta, "promptTokenCount"),
            output=count(meta, "candidatesTokenCount") + thoughts,
            cache_read=count(meta, "cachedContentTokenCount"),
        )
        return self.answer(text, data.get("modelVersion"), candidate.get("finishReason"), used)


class VertexModel(GeminiModel):
    """A Gemini model on Vertex AI, in one project and location."""

    def __init__(self, settings: Settings, *, project: str, location: str) -> None:
        static = settings.api_key is not None
        super().__init__(
            settings,
            hints=Hints(
                auth=(
                    settings.key_hint
                    if static
                    else "the gcloud token was refused: run `gcloud auth login`"
                )
                + f"; check that project {project!r} may use Vertex AI",
                not_found=f"check the model name {settings.model!r} and that it is served in "
                f"{location!r}",
            ),
        )
        self.project = project
        self.location = location
        self._token = settings.api_key
        self._token_expires = float("inf") if static else 0.0
        self._lock: anyio.Lock | None = None

    def __repr__(self) -> str:
        return (
            f"VertexModel(provider={self.provider!r}, model={self.model!r}, "
            f"project={self.project!r}, location={self.location!r})"
        )

    def endpoint(self) -> str:
        """The publisher-model URL under the project and location."""
        return (
            f"{self.base_url}/v1/projects/{quote(self.project, safe='')}/locations/"
            f"{quote(self.location, safe='')}/publishers/google/models/"
            f"{quote(self.model, safe='')}:generateContent"
        )

    async def headers(self) -> dict[str, str]:
        """The access token as a bearer token (from gcloud at the first call if need be)."""
        return {"Authorization": f"Bearer {await self._access_token()}"}

    async def _access_token(self) -> str:
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if self._token is None or time.monotonic() >= self._token_expires:
                self._token = await _gcloud_token()
                self._token_expires = time.monotonic() + TOKEN_LIFETIME
                self._http.add_secret(self._token)
            return self._token


async def _gcloud_token() -> str:
    """An access token from ``gcloud auth print-access-token``; ConfigError saying how to fix."""
    try:
        result = await anyio.run_process(
            ["gcloud", "auth", "print-access-token"], check=False, stdin=subprocess.DEVNULL
        )
    except OSError as exc:
        raise ConfigError(_NO_TOKEN, field="provider") from exc
    token = result.stdout.decode(errors="replace").strip()
    if result.returncode != 0 or not token:
        said = result.stderr.decode(errors="replace").strip().splitlines()
        reason = said[-1] if said else f"exit status {result.returncode}"
        raise ConfigError(
            f"provider: google-vertex could not get an access token from `gcloud auth "
            f"print-access-token` ({reason}); run `gcloud auth login`, or set "
            "GOOGLE_VERTEX_ACCESS_TOKEN",
            field="provider",
        )
    return token


def _vertex(settings: Settings) -> ChatModel:
    project = settings.setting("project", "GOOGLE_CLOUD_PROJECT")
    if not project:
        raise ConfigError(
            "provider: google-vertex needs a Google Cloud project: set GOOGLE_CLOUD_PROJECT "
            "or pass options={'project': ...}",
            field="provider",
        )
    location = settings.setting("location", "GOOGLE_CLOUD_LOCATION") or DEFAULT_LOCATION
    if settings.base_url is None:
        prefix = "" if location == "global" else f"{location}-"
        settings = dataclasses.replace(
            settings, base_url=f"https://{prefix}aiplatform.googleapis.com"
        )
    return VertexModel(settings, project=project, location=location)


def create(settings: Settings) -> ChatModel:
    """A :class:`GeminiModel` (``google-ai``) or :class:`VertexModel` (``google-vertex``)."""
    if settings.provider == "google-vertex":
        return _vertex(settings)
    return GeminiModel(settings)
