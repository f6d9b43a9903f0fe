"""`bounceledger serve`."""

from __future__ import annotations

import os
from pathlib import Path

import click
import msgspec

from api import logs
from api.cli.common import db_option, load, policy_option
from api.settings import SettingsInvalid, load_settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@db_option
@policy_option
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.option(
    "--log-format",
    default="json",
    show_default=True,
    type=click.Choice(["json", "text"]),
    help="One JSON object per line, or plain text.",
)
def serve(
    host: str, port: int, db: Path, policy: Path | None, log_level: str, log_format: str
) -> None:
    """Run the HTTP service: webhooks in, suppression queries out.

    Secrets and keys come from the environment: SMTP2GO_WEBHOOK_SECRET enables
    POST /v1/webhooks/smtp2go/events; BOUNCELEDGER_API_KEYS (comma-separated, optionally
    name:key) opens every other route to `Authorization: Bearer KEY`. A projection built
    under another policy is rebuilt before the port opens.

    \b
    Example:
        SMTP2GO_WEBHOOK_SECRET=s3cret BOUNCELEDGER_API_KEYS=ops:k3y bounceledger serve
    """
    import uvicorn

    from api.app import create_app

    try:
        settings = msgspec.structs.replace(load_settings(os.environ), db=db, policy=policy)
    except SettingsInvalid as exc:
        raise click.ClickException(str(exc)) from exc
    logs.configure(log_level, json=log_format == "json")
    app = create_app(settings, load(policy))
    if not settings.smtp2go_secret:
        click.echo("note: SMTP2GO_WEBHOOK_SECRET is unset: its endpoint answers 404", err=True)
    if not settings.api_keys:
        click.echo("note: BOUNCELEDGER_API_KEYS is unset: every query route answers 401", err=True)
    # access_log off: uvicorn's would print query strings, where a token may be.
    # proxy_headers off: the peer stays the real peer; X-Forwarded-For is believed only
    # from BOUNCELEDGER_TRUSTED_PROXIES (api/network.py), not from uvicorn's default list.
    uvicorn.run(
        app,
        host=host,
        port=port,
        access_log=False,
        proxy_headers=False,
        log_config=None,
        log_level=log_level,
    )
