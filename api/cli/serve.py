"""`bounceledger serve`."""

from __future__ import annotations

import os
import resource
from pathlib import Path

import click
import msgspec

from api import logs
from api.cli.common import db_option, load, policy_option
from api.settings import SettingsInvalid, load_settings

# Idle seconds a kept-alive connection is held between requests (uvicorn's timer).
KEEP_ALIVE_SECONDS = 5
# The longest request head (request line and headers) read; beyond it, 400.
MAX_HEAD_BYTES = 16 * 1024
# File descriptors kept for everything that is not a client connection (the database,
# logs, certificate fetches) when the connection limit is fitted under `ulimit -n`.
FD_HEADROOM = 64


def connection_limit(wanted: int) -> int:
    """`wanted`, lowered to fit the process's open-file limit: a connection accepted past
    that limit is not refused, it waits unanswered until some other one closes."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - FD_HEADROOM))


@click.command(name="serve")
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
def serve_command(
    host: str, port: int, db: Path | str, policy: Path | None, log_level: str, log_format: str
) -> None:
    """Run the HTTP service: webhooks in, suppression queries out.

    Secrets and keys come from the environment: SMTP2GO_WEBHOOK_SECRET enables
    POST /v1/webhooks/smtp2go/events; BOUNCELEDGER_API_KEYS (comma-separated, optionally
    name:key) opens every other route to `Authorization: Bearer KEY` and the console at
    /console. The instance serves the ledger's active policy and follows its changes;
    --policy names the one it expects: put into effect on a ledger without a policy
    history, refused at start when another is active (change it with `bounceledger
    rebuild --policy FILE --note WHY`). --db may be a postgresql:// URL shared by
    several instances.

    \b
    Example:
        export SMTP2GO_WEBHOOK_SECRET=$(openssl rand -hex 16)
        export BOUNCELEDGER_API_KEYS=ops:$(openssl rand -hex 16)
        bounceledger serve
    """
    import uvicorn

    from api.app import create_app
    from api.protocol import read_deadline_protocol

    try:
        # --db goes in before the settings are read: what derives from the database's
        # place (the SNS certificate cache, a trust store, beside it) must follow it.
        environ = {**os.environ, "BOUNCELEDGER_DB": str(db)}
        settings = msgspec.structs.replace(load_settings(environ), db=db, policy=policy)
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
    # Slow clients: request heads and bodies have BOUNCELEDGER_READ_TIMEOUT seconds each
    # (httptools with a read deadline, api/protocol.py; the body also in api/app.py), idle
    # keep-alive connections KEEP_ALIVE_SECONDS, and past BOUNCELEDGER_MAX_CONNECTIONS
    # connections requests are answered 503.
    limit = connection_limit(settings.max_connections)
    if limit < settings.max_connections:
        click.echo(
            f"note: at most {limit} connections (BOUNCELEDGER_MAX_CONNECTIONS is "
            f"{settings.max_connections}, but the open-file limit is lower)",
            err=True,
        )
    uvicorn.run(
        app,
        host=host,
        port=port,
        access_log=False,
        proxy_headers=False,
        log_config=None,
        log_level=log_level,
        http=read_deadline_protocol(settings.read_timeout),
        limit_concurrency=limit,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
    )
