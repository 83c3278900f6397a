"""Reply schemas as each wire format wants them.

A :class:`~autoresearch.providers.base.ReplySchema` is written in a small subset of JSON schema
(``type``, ``properties``, ``required``, ``items``, ``description``, ``anyOf`` of object
shapes, and the limits ``minLength`` and ``minItems``, which keep a small model from answering
with empty strings or lists). ``maxLength`` is not used: llama.cpp expands it into one grammar
rule per character and refuses long ones. Servers differ in what they accept:

- OpenAI's strict structured outputs need every property listed in ``required`` and
  ``additionalProperties: false`` on every object; an optional property becomes nullable
  (``"type": ["string", "null"]``) instead, and the size limits are left out
  (:func:`strict_form`);
- Gemini's ``responseSchema`` is an OpenAPI schema object whose type names are upper case
  (``OBJECT``, ``STRING``); it gets one object in place of an ``anyOf`` of objects (the union
  of their properties, those all branches require required) and no size limits
  (:func:`gemini_form`);
- llama.cpp and Ollama (which turn the schema into a grammar) and Anthropic's tool input take
  it as it is.
"""

from __future__ import annotations

from typing import Any

__all__ = ["gemini_form", "strict_form"]


_LIMITS = frozenset({"minLength", "maxLength", "minItems", "maxItems"})
"""Size limits: enforced by grammar-based servers, not accepted everywhere."""


def strict_form(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` for OpenAI's strict mode: all properties required, optional ones nullable."""
    out = {key: value for key, value in schema.items() if key not in _LIMITS}
    if "anyOf" in out:
        out["anyOf"] = [strict_form(branch) for branch in out["anyOf"]]
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
    """``schema`` as a Gemini OpenAPI schema (see the module docstring)."""
    if "anyOf" in schema:
        schema = _merged(schema["anyOf"])
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _LIMITS:
            continue
        if key == "type" and isinstance(value, str):
            out[key] = value.upper()
        elif key == "properties":
            out[key] = {name: gemini_form(sub) for name, sub in value.items()}
        elif key == "items" and isinstance(value, dict):
            out[key] = gemini_form(value)
        else:
            out[key] = value
    return out


def _merged(branches: list[dict[str, Any]]) -> dict[str, Any]:
    """One object schema for an ``anyOf`` of objects: every property, the common required."""
    properties: dict[str, Any] = {}
    required: list[str] | None = None
    for branch in branches:
        properties.update(branch.get("properties", {}))
        mine = list(branch.get("required", ()))
        required = mine if required is None else [name for name in required if name in mine]
    return {"type": "object", "properties": properties, "required": required or []}
