"""The `mdh` command: every sub-command is registered here and nowhere else."""

from __future__ import annotations

import typer

from mdh.commands import cdc, connectors, db, demo, dlq, keys, match, publish, report, serve

app = typer.Typer(
    name="mdh",
    help="mdh: a change-data-capture master data hub.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(db.app, name="db")
app.add_typer(cdc.app, name="cdc")
app.add_typer(dlq.app, name="dlq")
app.command(name="match")(match.match)
app.command(name="demo")(demo.demo)
app.add_typer(keys.app, name="keys")
app.add_typer(report.app, name="report")
app.command(name="serve")(serve.serve)
app.add_typer(publish.app, name="publish")
app.add_typer(connectors.app, name="connectors")


def main() -> None:  # pragma: no cover - console entry
    app()
