"""Random search: every parameter drawn uniformly in its own coordinate (log scales in log).

The baseline every other sampler has to beat; it learns nothing from trials.
"""

from __future__ import annotations

from autoresearch.params.model import Param, Value
from autoresearch.samplers.base import AskRequest, Config, Trial

__all__ = ["RandomSampler", "draw_uniform"]

_ATTEMPTS = 200


def draw_uniform(param: Param, request: AskRequest) -> Value:
    """One value of ``param`` drawn uniformly over its range (or its choices)."""
    if param.kind == "choice":
        return request.rng.choice(param.choices or [param.value])
    lo, hi = param.t_bounds()
    if param.kind == "int" and param.scale == "linear":
        return request.rng.randint(round(lo), round(hi))
    return param.from_t(request.rng.uniform(lo, hi))


class RandomSampler:
    """Uniform random search over the space, never repeating a configuration."""

    name = "random"

    def reset(self) -> None:
        """Nothing to forget."""

    def tell(self, trial: Trial) -> None:
        """Random search learns nothing."""

    def ask(self, request: AskRequest) -> Config | None:
        """A random untried configuration (None after many draws that were all tried)."""
        for _ in range(_ATTEMPTS):
            config = {**request.incumbent}
            config.update({p.key: draw_uniform(p, request) for p in request.params})
            if not request.seen(config):
                return config
        return None
