"""`mdh keys`: create, list and revoke API keys (the token is printed once, at creation)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hub.errors import HubError
from hub.services import HubServices
from hub.services.keys import ApiRole, AuditContext
from mdh.commands.serve import build_hub, load_mdh_config
from mdh.settings import Settings

app = typer.Typer(help="API keys: reader (golden reads, feed, reports), steward, admin.")
console = Console()
err = Console(stderr=True)
CLI_ACTOR = AuditContext(actor="cli", role=ApiRole.ADMIN)


def _hub() -> HubServices:
    settings = Settings()
    return build_hub(settings, load_mdh_config(settings), pool_size=1)


@app.command()
def create(
    role: Annotated[ApiRole, typer.Option(help="What the key may do.")],
    name: Annotated[
        str | None, typer.Option(help="Who holds it (recorded as the actor of their actions).")
    ] = None,
) -> None:
    """Create a key and print its token (shown only now)."""
    hub = _hub()
    try:
        issued = hub.desk(CLI_ACTOR).create_api_key(name or f"{role.value}-key", role)
    except HubError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    err.print(
        f"created key {issued.key.id} ({issued.key.name}, {issued.key.role.value}); "
        "the token below is shown only once:",
        highlight=False,
    )
    sys.stdout.write(issued.token + "\n")


@app.command(name="list")
def list_keys(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List keys (never their tokens)."""
    keys = _hub().api_keys()
    if as_json:
        rows = [
            {
                "id": k.id,
                "prefix": k.prefix,
                "name": k.name,
                "role": k.role.value,
                "created_by": k.created_by,
                "created_at": k.created_at.isoformat(),
                "revoked_at": None if k.revoked_at is None else k.revoked_at.isoformat(),
            }
            for k in keys
        ]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table("id", "prefix", "name", "role", "created", "revoked")
    for k in keys:
        table.add_row(
            str(k.id),
            k.prefix,
            k.name,
            k.role.value,
            k.created_at.isoformat(timespec="seconds"),
            "-" if k.revoked_at is None else k.revoked_at.isoformat(timespec="seconds"),
        )
    console.print(table)


@app.command()
def revoke(
    key_id: Annotated[int, typer.Argument(help="The key's id (from `mdh keys list`).")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")] = "",
) -> None:
    """Revoke a key; a running server stops accepting it within its auth cache time."""
    try:
        key = _hub().desk(CLI_ACTOR).revoke_api_key(key_id, reason=reason)
    except HubError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    console.print(f"key {key.id} ({key.name}) revoked at {key.revoked_at}", highlight=False)
