"""The `mdh` command: every sub-command is registered here and nowhere else."""

from __future__ import annotations

import typer

from mdh.commands import cdc, db, match

app = typer.Typer(
    name="mdh",
    help="mdh: a change-data-capture master data hub.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(db.app, name="db")
app.add_typer(cdc.app, name="cdc")
app.command(name="match")(match.match)


def main() -> None:  # pragma: no cover - console entry
    app()
