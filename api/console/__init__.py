"""The operator console: server-rendered pages under /console, each beside the JSON API.

Signed in with an API key exchanged for a session cookie (api/console/session.py); every
form carries a token bound to that session, and every form post must come from the
console's own origin (api/console/forms.py) — checked on the console's routes only (the
webhook doors and the JSON API, which take no cookies, are not affected); a
Content-Security-Policy allows only the console's own stylesheet and script. Every page
works without JavaScript; the one small script (static/console.js) only adds local times
on hover.

Bodies of receipts are attacker-controlled: templates are autoescaped and never mark
stored text safe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Router
from litestar.datastructures import ResponseHeader
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from api.console import (
    actions,
    endpoint_actions,
    ledger_pages,
    pages,
    policy_pages,
    suppression_pages,
)
from api.console.forms import check_form
from api.console.guard import require_session
from api.console.render import address_path

HERE = Path(__file__).parent
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def _filters(engine: Any) -> None:
    engine.engine.filters["address_path"] = address_path


def template_config() -> TemplateConfig:  # type: ignore[type-arg]
    from litestar.plugins.jinja import JinjaTemplateEngine

    return TemplateConfig(
        directory=HERE / "templates", engine=JinjaTemplateEngine, engine_callback=_filters
    )


def console_router() -> Router:
    """Every console route, behind the session guard and the check of its forms."""
    static = create_static_files_router(
        path="/static", directories=[HERE / "static"], opt={"public": True}, name="console-static"
    )
    return Router(
        path="/console",
        route_handlers=[
            static,
            *pages.HANDLERS,
            *actions.HANDLERS,
            *suppression_pages.HANDLERS,
            *policy_pages.HANDLERS,
            *ledger_pages.HANDLERS,
            *endpoint_actions.HANDLERS,
        ],
        guards=[require_session],
        before_request=check_form,
        opt={"console": True},
        response_headers=[
            ResponseHeader(name="Content-Security-Policy", value=CSP),
            ResponseHeader(name="Referrer-Policy", value="same-origin"),
            ResponseHeader(name="Cache-Control", value="no-store"),
        ],
        include_in_schema=False,
    )
