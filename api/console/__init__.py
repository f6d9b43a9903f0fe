"""The operator console: server-rendered pages under /console, each beside the JSON API.

Signed in with an API key exchanged for a session cookie (api/console/session.py); every
form carries a CSRF token, checked on the console's routes only (the webhook doors and
the JSON API, which take no cookies, are not affected); a Content-Security-Policy allows
only the console's own stylesheet and script. Every page works without JavaScript; the
one small script (static/console.js) only adds local times on hover.

Bodies of receipts are attacker-controlled: templates are autoescaped and never mark
stored text safe.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import ResponseHeader
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from api.console import actions, ledger_pages, pages, policy_pages, suppression_pages
from api.console.guard import require_session
from api.console.session import csrf_secret
from api.settings import Settings

HERE = Path(__file__).parent
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def template_config() -> TemplateConfig:  # type: ignore[type-arg]
    from litestar.plugins.jinja import JinjaTemplateEngine

    return TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine)


def console_router(settings: Settings) -> Router:
    """Every console route, behind the session guard and the console's CSRF check."""
    csrf = CSRFConfig(
        secret=csrf_secret(settings.api_keys),
        cookie_name="bl_csrf",
        cookie_path="/console",
        cookie_samesite="strict",
        cookie_httponly=True,
    )
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
        ],
        guards=[require_session],
        middleware=[DefineMiddleware(CSRFMiddleware, config=csrf)],
        opt={"console": True},
        response_headers=[
            ResponseHeader(name="Content-Security-Policy", value=CSP),
            ResponseHeader(name="Referrer-Policy", value="same-origin"),
            ResponseHeader(name="Cache-Control", value="no-store"),
        ],
        include_in_schema=False,
    )
