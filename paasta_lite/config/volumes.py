"""Host-path volumes, as the system config (`volumes`) and instances (`extra_volumes`) declare them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Volume:
    """A hostPath volume mounted into the main container; `mode` is `RO` or `RW`."""

    container_path: str
    host_path: str
    mode: str = "RO"

    @property
    def read_only(self) -> bool:
        return self.mode.upper() != "RW"


def parse_volume(data: Mapping[str, Any]) -> Volume:
    """Build a Volume from `{containerPath, hostPath, mode}` (already schema-validated)."""
    return Volume(
        container_path=str(data["containerPath"]),
        host_path=str(data["hostPath"]),
        mode=str(data.get("mode", "RO")).upper(),
    )
