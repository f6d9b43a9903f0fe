"""The `bounceledger` command line: a thin click layer over the functions the API uses."""

from __future__ import annotations

import click

from api.cli.audit import audit
from api.cli.ledger import export_command, import_command, migrate_command, verify
from api.cli.operator import release, suppress
from api.cli.quarantine import quarantine
from api.cli.queries import explain_command, status, suppressions
from api.cli.rebuild import rebuild_command
from api.cli.serve import serve


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="bounceledger")
def cli() -> None:
    """bounceledger: email-provider webhooks kept verbatim in a hash-chained ledger,
    folded into a suppression list you can rebuild and explain.

    \b
    Example:
        bounceledger serve --port 8000
        bounceledger status alice@example.org
        bounceledger explain alice@example.org
        bounceledger rebuild --policy strict.toml --dry-run
    """


for command in (
    serve,
    status,
    suppressions,
    explain_command,
    rebuild_command,
    suppress,
    release,
    audit,
    verify,
    export_command,
    import_command,
    migrate_command,
    quarantine,
):
    cli.add_command(command)

__all__ = ["cli"]
