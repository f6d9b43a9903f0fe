"""The provider registry: source name -> module with `decode`, `facts`, `DEFAULT_MAPPING`."""

from __future__ import annotations

from projections.providers import smtp2go
from projections.providers.facts import Facts, Provider

PROVIDERS: dict[str, Provider] = {
    smtp2go.NAME: smtp2go,
}

__all__ = ["PROVIDERS", "Facts", "Provider"]
