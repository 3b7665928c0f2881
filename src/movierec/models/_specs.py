"""Sub-model specs of composite models (`blend`, `ranker`): "name" or (name, params)."""

from __future__ import annotations

from typing import Any, Sequence

from movierec.errors import ConfigError


def model_specs(specs: Sequence[Any], empty: str) -> list[tuple[str, dict]]:
    """[(name, params), ...] from names or (name, params) pairs; `empty` is the sentence
    for an empty list."""
    out = []
    for spec in specs:
        if isinstance(spec, str):
            name, params = spec, {}
        else:
            name, params = spec[0], dict(spec[1] if len(spec) > 1 and spec[1] else {})
        out.append((name, params))
    if not out:
        raise ConfigError(empty)
    return out
