"""`mdh connectors register`: put the Debezium connector configs into a Kafka Connect cluster.

Idempotent: each connector is created, updated, or left alone when Connect already holds the
same config (``mdh.connect_rest`` has the rules). Prints one line per connector; exits 1 when
Connect refused any of them (with Connect's own message), 2 when a file is unusable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mdh.connect_rest import (
    ConnectClient,
    ConnectorFileError,
    ConnectRestError,
    read_connector_dir,
    register_connectors,
)

app = typer.Typer(help="Kafka Connect connectors for the scale-out deployment (infra/).")
console = Console()
err = Console(stderr=True)

DEFAULT_DIR = Path("infra/connectors")


@app.command()
def register(
    url: Annotated[
        str, typer.Argument(help="The Kafka Connect REST endpoint, e.g. http://connect:8083.")
    ],
    directory: Annotated[
        Path,
        typer.Option("--dir", "-d", help="Folder of connector files ({name, config} JSON)."),
    ] = DEFAULT_DIR,
    wait: Annotated[
        float,
        typer.Option(
            min=0,
            help="Seconds to keep retrying while Connect is unreachable or rebalancing.",
        ),
    ] = 0.0,
) -> None:
    """Create or update every connector of --dir; ${NAME} in a value comes from the environment."""
    try:
        specs = read_connector_dir(directory, os.environ)
    except ConnectorFileError as exc:
        err.print(f"[bold red]connector file error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc
    with ConnectClient(url, wait_seconds=wait) as client:
        results = register_connectors(client, specs)
    failed = 0
    for result in results:
        if isinstance(result, ConnectRestError):
            failed += 1
            err.print(
                f"[bold red]{result.connector}: failed[/] ({result})",
                highlight=False,
                soft_wrap=True,
            )
            continue
        state = f" ({result.state})" if result.state else ""
        console.print(f"{result.name}: {result.outcome}{state}", highlight=False, soft_wrap=True)
        if result.trace:
            err.print(f"  {result.name}: {result.trace}", highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(1)
