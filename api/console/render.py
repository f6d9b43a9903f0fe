"""What every console page shares: the runtime, the signed-in operator, rendering, times."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.response import Redirect, Template

from api.runtime import Runtime

NAV = (
    ("lookup", "/console", "Lookup"),
    ("suppressions", "/console/suppressions", "Suppressions"),
    ("policy", "/console/policy", "Policy"),
    ("ledger", "/console/ledger", "Ledger"),
)


def runtime(request: Request[Any, Any, Any]) -> Runtime:
    found: Runtime = request.app.state.runtime
    return found


def operator(request: Request[Any, Any, Any]) -> str:
    """The signed-in operator: their API key's name (recorded as the actor of actions)."""
    return str(request.state.get("operator", ""))


def page(
    request: Request[Any, Any, Any],
    template: str,
    section: str,
    status_code: int = 200,
    **context: Any,
) -> Template:
    """A full page: the template with the navigation, the operator and the notice."""
    return Template(
        template,
        context={
            "nav": NAV,
            "section": section,
            "operator": operator(request),
            "notice": request.query_params.get("done"),
            **context,
        },
        status_code=status_code,
    )


def back(path: str, notice: str | None = None) -> Redirect:
    """Post/redirect/get: a 303 to `path`, with a one-line notice shown there."""
    return Redirect(path, status_code=303, query_params={"done": notice} if notice else None)
