"""Deep merge, the one rule used for system config files and for instance configs.

Dicts merge key by key, recursively; anything else (lists, scalars, null) in the override
replaces the base value wholesale. Inputs are never mutated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Return `base` overlaid by `override` (override wins; nested dicts are merged)."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def overridden_leaves(
    base: Mapping[str, Any], override: Mapping[str, Any], prefix: str = ""
) -> list[str]:
    """Dotted paths of the leaves in `base` that `override` replaces (for "which file won" notes)."""
    paths = []
    for key, value in override.items():
        if key not in base:
            continue
        current = base[key]
        path = f"{prefix}{key}"
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            paths.extend(overridden_leaves(current, value, prefix=f"{path}."))
        elif current != value:
            paths.append(path)
    return paths
