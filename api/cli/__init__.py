"""The `bounceledger` command line: a thin click layer over the functions the API uses."""

from __future__ import annotations

import click

from api.cli.audit import audit
from api.cli.changes import changes_command
from api.cli.endpoints import endpoints_group
from api.cli.erase import erase_command
from api.cli.ledger import export_command, import_command, migrate_command, verify_command
from api.cli.operator import release_command, suppress_command
from api.cli.quarantine import quarantine
from api.cli.queries import explain_command, status_command, suppressions_command
from api.cli.rebuild import rebuild_command
from api.cli.retention import retention_command
from api.cli.serve import serve_command


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


# Each command's function is `<name>_command` with its name given (`import` cannot be a
# function's name, and `rebuild`, `explain` would shadow what they call); the groups
# (`cli`, `audit`, `quarantine`) keep their bare names, as their subcommands hang off them.
for command in (
    serve_command,
    status_command,
    suppressions_command,
    explain_command,
    rebuild_command,
    suppress_command,
    release_command,
    erase_command,
    retention_command,
    changes_command,
    audit,
    verify_command,
    export_command,
    import_command,
    migrate_command,
    quarantine,
    endpoints_group,
):
    cli.add_command(command)

__all__ = ["cli"]
