"""Reply schemas as each wire format wants them.

A :class:`~autoresearch.providers.base.ReplySchema` is written in the plain subset of JSON
schema (``type``, ``properties``, ``required``, ``items``, ``description``). Servers differ in
what they accept beyond that:

- OpenAI's strict structured outputs need every property listed in ``required`` and
  ``additionalProperties: false`` on every object; an optional property becomes nullable
  (``"type": ["string", "null"]``) instead (:func:`strict_form`);
- Gemini's ``responseSchema`` is an OpenAPI schema object whose type names are upper case
  (``OBJECT``, ``STRING``) (:func:`gemini_form`);
- llama.cpp, Ollama and Anthropic's tool input take the plain form as it is.
"""

from __future__ import annotations

from typing import Any

__all__ = ["gemini_form", "strict_form"]


def strict_form(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` for OpenAI's strict mode: all properties required, optional ones nullable."""
    out = dict(schema)
    if out.get("type") == "object":
        required = set(out.get("required", ()))
        properties: dict[str, Any] = {}
        for name, sub in out.get("properties", {}).items():
            strict = strict_form(sub)
            if name not in required:
                strict = {**strict, "type": [strict["type"], "null"]}
            properties[name] = strict
        out["properties"] = properties
        out["required"] = list(properties)
        out["additionalProperties"] = False
    if isinstance(out.get("items"), dict):
        out["items"] = strict_form(out["items"])
    return out


def gemini_form(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` as a Gemini OpenAPI schema: upper-case type names, nothing else changed."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            out[key] = value.upper()
        elif key == "properties":
            out[key] = {name: gemini_form(sub) for name, sub in value.items()}
        elif key == "items" and isinstance(value, dict):
            out[key] = gemini_form(value)
        else:
            out[key] = value
    return out
