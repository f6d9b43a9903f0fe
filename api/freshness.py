"""The guard of every lookup: no answer from a projection that trails the ledger.

A lookup answered from a projection that has not folded the last minutes' receipts
could say "not suppressed" about someone whose complaint is in the ledger. While the
runtime's watch (api/runtime.py) finds the oldest unprojected receipt older than
BOUNCELEDGER_MAX_PROJECTION_LAG, lookups answer 503 with Retry-After instead.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from api.runtime import runtime_of
from projections.errors import ProjectionBehind


def require_fresh(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Refuse (ProjectionBehind: 503) while the projection is behind."""
    behind = runtime_of(connection).behind
    if behind is not None:
        raise ProjectionBehind(behind)


FRESH = [require_fresh]  # `guards=FRESH` on a route that answers from the projection
