"""A pydantic base model that speaks both snake_case and the seed's camelCase.

Fields are declared in snake_case; their camelCase spelling is the alias used for input
(``ResearchConfig(repoPath=...)``), for JSON output (``model_dump(by_alias=True)``) and for
attribute reads (``result.metricValue`` is ``result.metric_value``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel, to_snake

__all__ = ["CamelModel"]


class CamelModel(BaseModel):
    """Base for every public data model: snake_case fields, camelCase aliases, frozen."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        frozen=True,
        extra="forbid",
    )

    if not TYPE_CHECKING:  # keep static attribute checking strict; camelCase reads are dynamic

        def __getattr__(self, name: str) -> Any:
            snake = to_snake(name)
            if snake != name and snake in type(self).model_fields:
                return getattr(self, snake)
            return super().__getattr__(name)

    def to_json_dict(self) -> dict[str, Any]:
        """The model as a JSON-ready dict with camelCase keys (as NeuroLink writes them)."""
        return self.model_dump(mode="json", by_alias=True)
