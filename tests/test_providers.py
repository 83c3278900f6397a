"""Providers: the registry, and every wire format's request and answer over httpx.MockTransport."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import test_providers_kit as kit
from test_providers_kit import (
    BARE_REQUEST,
    BY_NAME,
    CASES,
    KEYED_CASES,
    REQUEST,
    TEXT,
    Case,
    Reply,
)

from autoresearch.errors import ConfigError, ProviderError
from autoresearch.providers import DEFAULT_MODELS, PROVIDERS, ChatModel, create_chat_model

build = kit.build
delays = kit.delays

WIRE_MODULES = ("_http", "_wire", "anthropic", "openai", "azure", "google", "ollama")


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(500)))


def config_error(provider: str, model: str | None = None, **kwargs: Any) -> ConfigError:
    kwargs.setdefault("env", {})
    with pytest.raises(ConfigError) as caught:
        create_chat_model(provider, model, client=client(), **kwargs)
    return caught.value


# The registry.


def test_the_provider_names() -> None:
    assert PROVIDERS == (
        "anthropic",
        "openai",
        "openai-compatible",
        "openrouter",
        "azure",
        "mistral",
        "google-ai",
        "google-vertex",
        "ollama",
        "lm-studio",
        "llamacpp",
    )
    assert sorted(case.provider for case in CASES) == sorted(PROVIDERS)


def test_importing_the_package_imports_no_wire_format() -> None:
    code = (
        "import sys, autoresearch.providers as p; "
        "print(sorted(m for m in sys.modules if m.startswith('autoresearch.providers.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = out.stdout
    assert all(f"autoresearch.providers.{name}'" not in loaded for name in WIRE_MODULES), loaded


def test_default_models() -> None:
    assert DEFAULT_MODELS == {
        "anthropic": "claude-sonnet-4-5",
        "openai": "gpt-4.1",
        "openai-compatible": None,
        "openrouter": "anthropic/claude-sonnet-4.5",
        "azure": None,
        "mistral": "mistral-large-latest",
        "google-ai": "gemini-2.5-pro",
        "google-vertex": "gemini-2.5-pro",
        "ollama": None,
        "lm-studio": None,
        "llamacpp": "default",
    }


@pytest.mark.parametrize("case", CASES, ids=str)
def test_every_provider_builds_a_chat_model(case: Case) -> None:
    model = create_chat_model(
        case.provider, case.model, client=client(), env=case.env, options=case.options
    )
    assert isinstance(model, ChatModel)
    assert model.provider == case.provider
    assert model.model == (case.model or DEFAULT_MODELS[case.provider])


def test_unknown_provider() -> None:
    error = config_error("antropic")
    assert error.field == "provider"
    assert str(error) == (
        "provider: unknown provider 'antropic'; choose one of: " + ", ".join(PROVIDERS)
    )


@pytest.mark.parametrize(
    ("provider", "variables"),
    [
        ("anthropic", "ANTHROPIC_API_KEY"),
        ("openai", "OPENAI_API_KEY"),
        ("openrouter", "OPENROUTER_API_KEY"),
        ("mistral", "MISTRAL_API_KEY"),
        ("google-ai", "GEMINI_API_KEY or GOOGLE_API_KEY"),
    ],
)
def test_a_missing_key_names_the_variable_and_the_argument(provider: str, variables: str) -> None:
    error = config_error(provider)
    assert error.field == "provider"
    assert (
        str(error) == f"provider: {provider} needs an API key: set {variables} or pass api_key=..."
    )


def test_a_missing_azure_key() -> None:
    error = config_error(
        "azure", "dep", env={"AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com"}
    )
    assert "set AZURE_OPENAI_API_KEY or pass api_key=..." in str(error)


@pytest.mark.parametrize("provider", ["openai-compatible", "azure", "ollama", "lm-studio"])
def test_a_missing_model_is_named(provider: str) -> None:
    env = {"OPENAI_COMPATIBLE_BASE_URL": "http://h/v1", "AZURE_OPENAI_ENDPOINT": "https://r"}
    error = config_error(provider, api_key="k", env=env)
    assert error.field == "model"
    assert str(error).startswith(f"model: {provider} has no default model; pass model=...")
    assert "\n" not in str(error)


@pytest.mark.parametrize(
    ("provider", "variable"),
    [("openai-compatible", "OPENAI_COMPATIBLE_BASE_URL"), ("azure", "AZURE_OPENAI_ENDPOINT")],
)
def test_a_missing_base_url_is_named(provider: str, variable: str) -> None:
    error = config_error(provider, "m", api_key="k")
    assert error.field == "base_url"
    assert f"set {variable} or pass base_url=..." in str(error)


def test_a_base_url_must_be_http() -> None:
    error = config_error("openai-compatible", "m", base_url="localhost:8000/v1")
    assert error.field == "base_url"
    assert "http:// or https://" in str(error)


def test_unknown_options_are_refused() -> None:
    error = config_error("anthropic", api_key="k", options={"project": "p"})
    assert error.field == "options"
    assert str(error) == "options: anthropic does not take project (it takes: none)"


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_max_retries_must_be_a_count(bad: Any) -> None:
    assert config_error("anthropic", api_key="k", max_retries=bad).field == "max_retries"


@pytest.mark.anyio
async def test_arguments_beat_the_environment(build: kit.Build) -> None:
    env = {"ANTHROPIC_API_KEY": "env-key-aaaa", "ANTHROPIC_BASE_URL": "https://env.example"}
    model, server = build(
        BY_NAME["anthropic"],
        env=env,
        api_key="arg-key-bbbb",
        base_url="https://arg.example/",
        model="claude-opus-4-1",
    )
    await model.complete(REQUEST)
    request = server.requests[0]
    assert str(request.url) == "https://arg.example/v1/messages"
    assert request.headers["x-api-key"] == "arg-key-bbbb"
    assert server.body()["model"] == "claude-opus-4-1"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("provider", "env", "url"),
    [
        (
            "anthropic",
            {"ANTHROPIC_BASE_URL": "https://proxy.example"},
            "https://proxy.example/v1/messages",
        ),
        (
            "openai",
            {"OPENAI_BASE_URL": "https://proxy.example/v1"},
            "https://proxy.example/v1/chat/completions",
        ),
        (
            "google-ai",
            {"GEMINI_BASE_URL": "https://proxy.example"},
            "https://proxy.example/v1beta/models/gemini-2.5-pro:generateContent",
        ),
        ("ollama", {"OLLAMA_HOST": "gpu-box"}, "http://gpu-box:11434/api/chat"),
        ("ollama", {"OLLAMA_HOST": "0.0.0.0:8080"}, "http://0.0.0.0:8080/api/chat"),
        ("ollama", {"OLLAMA_HOST": "https://ollama.example/"}, "https://ollama.example/api/chat"),
        (
            "lm-studio",
            {"LM_STUDIO_BASE_URL": "http://mac:1234/v1"},
            "http://mac:1234/v1/chat/completions",
        ),
        (
            "llamacpp",
            {"LLAMACPP_BASE_URL": "http://box:9000/v1"},
            "http://box:9000/v1/chat/completions",
        ),
    ],
)
async def test_base_urls_mean_what_the_vendor_sdks_mean(
    build: kit.Build, provider: str, env: dict[str, str], url: str
) -> None:
    case = BY_NAME[provider]
    model, server = build(case, env={**case.env, **env})
    await model.complete(REQUEST)
    assert str(server.requests[0].url) == url


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("env", "sent"),
    [
        (
            {"GEMINI_API_KEY": "gemini-key-1111", "GOOGLE_API_KEY": "google-key-2222"},
            "gemini-key-1111",
        ),
        ({"GOOGLE_API_KEY": "google-key-2222"}, "google-key-2222"),
    ],
)
async def test_google_ai_key_variables(build: kit.Build, env: dict[str, str], sent: str) -> None:
    model, server = build(BY_NAME["google-ai"], env=env)
    await model.complete(REQUEST)
    assert server.requests[0].headers["x-goog-api-key"] == sent


@pytest.mark.parametrize("case", KEYED_CASES, ids=str)
def test_repr_shows_no_key(case: Case) -> None:
    model = create_chat_model(
        case.provider, case.model, client=client(), env=case.env, options=case.options
    )
    assert case.key is not None
    assert case.key not in repr(model)
    assert case.provider in repr(model)


# Every wire format: the request.


@pytest.mark.anyio
@pytest.mark.parametrize("case", CASES, ids=str)
async def test_the_request_url_method_and_credentials(build: kit.Build, case: Case) -> None:
    model, server = build(case)
    await model.complete(REQUEST)
    request = server.requests[0]
    assert request.method == "POST"
    assert str(request.url) == case.url
    assert request.headers["content-type"] == "application/json"
    for name, value in case.auth.items():
        assert request.headers[name] == value
    if not case.auth:
        assert "authorization" not in request.headers
    if case.key:
        assert case.key not in str(request.url)
    if case.provider == "anthropic":
        assert request.headers["anthropic-version"] == "2023-06-01"


def _expected_body(case: Case) -> dict[str, Any]:
    """What REQUEST looks like on each wire format."""
    model = case.model or DEFAULT_MODELS[case.provider]
    turns = [{"role": m.role, "content": m.content} for m in REQUEST.messages]
    system = {"role": "system", "content": REQUEST.system}
    if case.provider == "anthropic":
        return {
            "model": model,
            "max_tokens": 256,
            "messages": turns,
            "system": [
                {"type": "text", "text": REQUEST.system, "cache_control": {"type": "ephemeral"}}
            ],
            "temperature": 0.2,
        }
    if case.provider.startswith("google"):
        roles = {"user": "user", "assistant": "model"}
        return {
            "contents": [
                {"role": roles[m.role], "parts": [{"text": m.content}]} for m in REQUEST.messages
            ],
            "systemInstruction": {"parts": [{"text": REQUEST.system}]},
            "generationConfig": {"maxOutputTokens": 256, "temperature": 0.2},
        }
    if case.provider == "ollama":
        return {
            "model": model,
            "messages": [system, *turns],
            "stream": False,
            "options": {"num_predict": 256, "temperature": 0.2},
        }
    limit = "max_completion_tokens" if case.provider == "openai" else "max_tokens"
    return {"model": model, "messages": [system, *turns], limit: 256, "temperature": 0.2}


@pytest.mark.anyio
@pytest.mark.parametrize("case", CASES, ids=str)
async def test_the_request_body(build: kit.Build, case: Case) -> None:
    model, server = build(case)
    await model.complete(REQUEST)
    assert server.body() == _expected_body(case)


@pytest.mark.anyio
@pytest.mark.parametrize("case", CASES, ids=str)
async def test_no_system_text_and_no_temperature_are_left_out(build: kit.Build, case: Case) -> None:
    model, server = build(case)
    await model.complete(BARE_REQUEST)
    sent = json.dumps(server.body())
    assert "system" not in sent
    assert "temperature" not in sent
    assert "16" in sent


# Every wire format: the answer.


@pytest.mark.anyio
@pytest.mark.parametrize("case", CASES, ids=str)
async def test_the_answer_text_usage_and_stop_reason(build: kit.Build, case: Case) -> None:
    model, _ = build(case)
    response = await model.complete(REQUEST)
    assert response.text == TEXT
    assert response.usage == case.usage
    assert response.stop_reason == case.stop
    assert response.model


@pytest.mark.anyio
async def test_openai_content_parts_and_null_content(build: kit.Build) -> None:
    parts = {
        "role": "assistant",
        "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
    }
    reply = {"choices": [{"message": parts, "finish_reason": "stop"}]}
    model, _ = build(BY_NAME["openai"], Reply(200, reply))
    assert (await model.complete(REQUEST)).text == "ab"
    empty = {"choices": [{"message": {"role": "assistant", "content": None}}], "usage": None}
    model, _ = build(BY_NAME["openai"], Reply(200, empty))
    response = await model.complete(REQUEST)
    assert (response.text, response.usage.input_tokens, response.usage.calls) == ("", 0, 1)


@pytest.mark.anyio
async def test_a_blocked_gemini_prompt_is_an_error(build: kit.Build) -> None:
    blocked = {"promptFeedback": {"blockReason": "SAFETY"}}
    model, _ = build(BY_NAME["google-ai"], Reply(200, blocked))
    with pytest.raises(ProviderError, match=r"google-ai: no answer was generated \(SAFETY\)"):
        await model.complete(REQUEST)


@pytest.mark.anyio
@pytest.mark.parametrize("case", CASES, ids=str)
async def test_an_answer_of_the_wrong_shape_is_an_error(build: kit.Build, case: Case) -> None:
    model, _ = build(case, Reply(200, {"unexpected": True}))
    with pytest.raises(ProviderError) as caught:
        await model.complete(REQUEST)
    assert caught.value.status == 200
    assert caught.value.provider == case.provider
    assert "unexpected" in (caught.value.body or "")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("reply", "said"),
    [
        (Reply(200, text="<html>gateway</html>"), "but the body is not JSON"),
        (Reply(200, [1, 2]), "but the body is not a JSON object"),
        (Reply(200, {"error": {"message": "upstream failed", "code": 502}}), "upstream failed"),
    ],
)
async def test_unusable_200_answers_are_errors(build: kit.Build, reply: Reply, said: str) -> None:
    model, server = build(BY_NAME["openrouter"], reply)
    with pytest.raises(ProviderError, match=said):
        await model.complete(REQUEST)
    assert server.attempts == 1


# Provider-specific settings.


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("options", "env", "version", "limit"),
    [
        ({}, {}, "2024-10-21", "max_tokens"),
        ({}, {"AZURE_OPENAI_API_VERSION": "2024-06-01"}, "2024-06-01", "max_tokens"),
        (
            {"api_version": "2025-04-01-preview"},
            {"AZURE_OPENAI_API_VERSION": "2024-06-01"},
            "2025-04-01-preview",
            "max_completion_tokens",
        ),
    ],
)
async def test_azure_api_version(
    build: kit.Build, options: dict[str, str], env: dict[str, str], version: str, limit: str
) -> None:
    case = BY_NAME["azure"]
    model, server = build(case, env={**case.env, **env}, options=options)
    await model.complete(REQUEST)
    assert server.requests[0].url.params["api-version"] == version
    assert server.body()[limit] == 256
    assert version in repr(model)


@pytest.mark.anyio
async def test_openrouter_attribution_headers(build: kit.Build) -> None:
    options = {"site_url": "https://example.org", "site_name": "autoresearch"}
    model, server = build(BY_NAME["openrouter"], options=options)
    await model.complete(REQUEST)
    assert server.requests[0].headers["http-referer"] == "https://example.org"
    assert server.requests[0].headers["x-title"] == "autoresearch"


@pytest.mark.anyio
async def test_vertex_global_location_and_options_beat_env(build: kit.Build) -> None:
    case = BY_NAME["google-vertex"]
    model, server = build(case, options={"project": "other", "location": "global"})
    await model.complete(REQUEST)
    assert str(server.requests[0].url) == (
        "https://aiplatform.googleapis.com/v1/projects/other/locations/global/publishers/"
        "google/models/gemini-2.5-pro:generateContent"
    )


def test_vertex_needs_a_project() -> None:
    error = config_error("google-vertex", env={"GOOGLE_VERTEX_ACCESS_TOKEN": "t"})
    assert error.field == "provider"
    assert "set GOOGLE_CLOUD_PROJECT or pass options={'project': ...}" in str(error)


def _fake_gcloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> Path:
    """A ``gcloud`` on PATH running ``script``; returns the file it logs its calls to."""
    calls = tmp_path / "calls"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gcloud = bin_dir / "gcloud"
    gcloud.write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\n{script}\n')
    gcloud.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return calls


@pytest.mark.anyio
@pytest.mark.skipif(sys.platform == "win32", reason="a shell-script gcloud")
async def test_vertex_asks_gcloud_for_a_token_once(
    build: kit.Build, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _fake_gcloud(tmp_path, monkeypatch, "echo ya29.from-gcloud-5d6e")
    model, server = build(BY_NAME["google-vertex"], env={"GOOGLE_CLOUD_PROJECT": "p"})
    await model.complete(REQUEST)
    await model.complete(REQUEST)
    assert calls.read_text().splitlines() == ["auth print-access-token"]
    assert [r.headers["authorization"] for r in server.requests] == [
        "Bearer ya29.from-gcloud-5d6e"
    ] * 2
    assert str(server.requests[0].url).startswith("https://us-central1-aiplatform.googleapis.com/")


@pytest.mark.anyio
@pytest.mark.skipif(sys.platform == "win32", reason="a shell-script gcloud")
async def test_vertex_says_how_to_fix_a_gcloud_failure(
    build: kit.Build, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_gcloud(tmp_path, monkeypatch, "echo 'ERROR: no active account' >&2; exit 1")
    model, server = build(BY_NAME["google-vertex"], env={"GOOGLE_CLOUD_PROJECT": "p"})
    with pytest.raises(ConfigError, match=r"\(ERROR: no active account\); run `gcloud auth login`"):
        await model.complete(REQUEST)
    assert server.attempts == 0


@pytest.mark.anyio
async def test_vertex_without_gcloud(
    build: kit.Build, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    model, _ = build(BY_NAME["google-vertex"], env={"GOOGLE_CLOUD_PROJECT": "p"})
    with pytest.raises(ConfigError) as caught:
        await model.complete(REQUEST)
    assert str(caught.value) == (
        "provider: google-vertex needs an access token: set GOOGLE_VERTEX_ACCESS_TOKEN, pass "
        "api_key=..., or install the gcloud CLI and run `gcloud auth login`"
    )
