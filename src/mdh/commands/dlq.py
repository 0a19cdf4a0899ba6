"""`mdh dlq`: list, show, replay and discard dead letters (poison messages kept with a reason).

Replay parses and maps the stored raw message again with the *current* source mappings (so a
mapping fix takes effect) and applies it; letters are replayed in the order they arrived, and
applying is idempotent (a change not newer than the stored row changes nothing). Every replay
and discard is audited with the operating-system user as the actor.
"""

from __future__ import annotations

import getpass
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hub.errors import HubError
from hub.services import HubServices
from hub.services.keys import ApiRole, AuditContext
from hub.services.queue import DeadLetterView
from mdh.commands.serve import DeadLetterReplayer, build_hub, load_mdh_config
from mdh.settings import Settings

app = typer.Typer(help="Dead letters: messages that could not be parsed, mapped or applied.")
console = Console()
err = Console(stderr=True)


def _hub() -> tuple[HubServices, DeadLetterReplayer | None]:
    settings = Settings()
    config = load_mdh_config(settings)
    hub = build_hub(settings, config, pool_size=2)
    replayer = None if config.mappings is None else DeadLetterReplayer(hub, config.mappings)
    return hub, replayer


def _actor() -> AuditContext:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return AuditContext(actor=f"cli:{user}", role=ApiRole.ADMIN)


def _get(hub: HubServices, letter_id: int) -> DeadLetterView:
    try:
        return hub.dead_letter(letter_id)
    except HubError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc


@app.command("list")
def list_letters(
    status: Annotated[
        str | None, typer.Option(help="open, replayed or discarded (default: all).")
    ] = "open",
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List dead letters, oldest first."""
    hub, _ = _hub()
    letters = hub.dead_letters(
        status=None if status in (None, "all") else status, source=source, limit=limit
    )
    if as_json:
        for letter in letters:
            typer.echo(json.dumps(_summary(letter), sort_keys=True))
        return
    table = Table("id", "source", "status", "attempts", "last seen", "reason")
    for letter in letters:
        table.add_row(
            str(letter.id),
            letter.source,
            letter.status,
            str(letter.attempts),
            letter.last_seen_at.isoformat(timespec="seconds"),
            letter.reason,
        )
    console.print(table)
    console.print(f"{len(letters)} dead letter(s)")


@app.command()
def show(letter_id: Annotated[int, typer.Argument(help="Dead letter id.")]) -> None:
    """Show one dead letter with its raw key and value."""
    hub, _ = _hub()
    letter = _get(hub, letter_id)
    data = _summary(letter)
    data["raw_key"] = DeadLetterView.text(letter.raw_key)
    data["raw_value"] = DeadLetterView.text(letter.raw_value)
    typer.echo(json.dumps(data, indent=2, sort_keys=True))


@app.command()
def replay(
    letter_ids: Annotated[list[int] | None, typer.Argument(help="Ids to replay.")] = None,
    all_open: Annotated[
        bool, typer.Option("--all", help="Replay every open dead letter, oldest first.")
    ] = False,
    source: Annotated[str | None, typer.Option(help="With --all: only this source.")] = None,
) -> None:
    """Parse, map and apply dead letters again with the current mappings. Exit 1 if any fails."""
    if not letter_ids and not all_open:
        err.print("[bold red]error:[/] name dead letter ids, or pass --all")
        raise typer.Exit(2)
    hub, replayer = _hub()
    if replayer is None:
        err.print("[bold red]error:[/] the config file has no sources: nothing can be replayed")
        raise typer.Exit(2)
    if all_open:
        letters = _all_open(hub, source)
    else:
        letters = [_get(hub, letter_id) for letter_id in sorted(set(letter_ids or []))]
    desk = hub.desk(_actor())
    failed = 0
    for letter in letters:
        if letter.status != "open":
            console.print(f"{letter.id}: skipped ({letter.status})")
            continue
        outcome = replayer(letter)
        if outcome.applied:
            desk.set_dead_letter_status(
                letter.id, "replayed", reason="replayed", details={"outcome": outcome.detail}
            )
            console.print(f"{letter.id}: replayed: {outcome.detail}", highlight=False)
        else:
            failed += 1
            console.print(f"{letter.id}: [red]not applied[/]: {outcome.detail}", highlight=False)
    console.print(f"{len(letters) - failed} replayed, {failed} still failing")
    if failed:
        raise typer.Exit(1)


@app.command()
def discard(
    letter_ids: Annotated[list[int], typer.Argument(help="Ids to discard.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")],
) -> None:
    """Mark dead letters discarded (kept for the record, never replayed)."""
    hub, _ = _hub()
    desk = hub.desk(_actor())
    for letter_id in sorted(set(letter_ids)):
        _get(hub, letter_id)
        desk.set_dead_letter_status(letter_id, "discarded", reason=reason)
        console.print(f"{letter_id}: discarded")


def _all_open(hub: HubServices, source: str | None) -> list[DeadLetterView]:
    letters: list[DeadLetterView] = []
    after = 0
    while True:
        page = hub.dead_letters(status="open", source=source, after_id=after, limit=500)
        if not page:
            return letters
        letters.extend(page)
        after = page[-1].id


def _summary(letter: DeadLetterView) -> dict[str, object]:
    return {
        "id": letter.id,
        "source": letter.source,
        "status": letter.status,
        "reason": letter.reason,
        "error_class": letter.error_class,
        "attempts": letter.attempts,
        "first_seen_at": letter.first_seen_at.isoformat(),
        "last_seen_at": letter.last_seen_at.isoformat(),
        "position": dict(letter.position) if letter.position is not None else None,
    }
