"""The search space of the offline proposer: discovery, domains, the user's edits, rewriting."""

from autoresearch.params.model import Kind, Param, ParamSpec, Scale, SearchSpace, Style, Value
from autoresearch.params.space import apply_specs, discover_space, frozen_specs, unknown_specs

__all__ = [
    "Kind",
    "Param",
    "ParamSpec",
    "Scale",
    "SearchSpace",
    "Style",
    "Value",
    "apply_specs",
    "discover_space",
    "frozen_specs",
    "unknown_specs",
]
