"""`mdh match`: find duplicates in (or links across) CSV/Parquet files with the matching engine."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

if TYPE_CHECKING:  # the engine (numpy, pandas, pyarrow) loads only when the command runs
    from mdh.file_matching import InputFile, MatchRun

console = Console()
err = Console(stderr=True)

EXIT_BAD_INPUT = 2


def match(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="CSV (.csv, .tsv) or Parquet files; several are pooled (or linked with --link).",
            exists=True,
            dir_okay=False,
            readable=True,
            show_default=False,
        ),
    ],
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="YAML/JSON mapping: 'columns' (canonical field: column), 'id', 'truth', "
            "and per-file overrides under 'files'.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    mappings: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            "-m",
            help="canonical=column, e.g. --map family_name=surname (repeatable; wins over "
            "--config).",
        ),
    ] = None,
    id_column: Annotated[
        str | None,
        typer.Option("--id", help="Column holding record ids (default: the row number)."),
    ] = None,
    truth: Annotated[
        str | None,
        typer.Option(
            "--truth",
            help="Column holding true entity labels: print pairwise precision/recall/F1 and "
            "B-cubed.",
        ),
    ] = None,
    link: Annotated[
        bool,
        typer.Option(
            "--link",
            help="Link mode: only pair records from different files (default: dedupe all "
            "records, within and across files).",
        ),
    ] = False,
    spec: Annotated[
        str | None,
        typer.Option(
            "--spec",
            help="A match spec file (YAML/JSON) or a shipped spec name (customers, febrl, "
            "census); the model is trained on the input without labels.",
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="A trained model file (from --save-model); skips training.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    save_model: Annotated[
        Path | None, typer.Option("--save-model", help="Write the trained model here.")
    ] = None,
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Clusters CSV: source, record_id, cluster_id (one row a record)."
        ),
    ] = Path("clusters.csv"),
    pairs: Annotated[
        Path | None,
        typer.Option(
            "--pairs",
            help="Write scored pairs (match and review decisions) with explanations as JSONL.",
        ),
    ] = None,
    encoding: Annotated[
        str, typer.Option("--encoding", help="Text encoding of CSV inputs.")
    ] = "utf-8",
    country: Annotated[
        str | None,
        typer.Option(
            "--country",
            help="ISO country for records without one (phone numbers, postcodes).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the training samples.")] = 0,
    train_sample: Annotated[
        int,
        typer.Option(
            "--train-sample",
            min=0,
            help="Train on a seeded uniform sample of this many records (0: all records); "
            "every record is still matched. Term frequencies are counted over all records.",
        ),
    ] = 200_000,
    workers: Annotated[
        int,
        typer.Option("--workers", min=0, help="Processes/threads to use (0: every core)."),
    ] = 0,
) -> None:
    """Find duplicate records in files (or links across them) and write clusters.

    Bad input (missing column, wrong type, broken encoding) exits with code 2.
    """
    from mdh.file_matching import InputError, run_matching

    if model is not None and spec is not None:
        _fail("--model and --spec exclude each other: a trained model carries its spec")
    for option, target in (("--out", out), ("--pairs", pairs), ("--save-model", save_model)):
        if target is not None and not target.parent.is_dir():
            _fail(f"{option} {target}: expected a file in an existing directory")
    try:
        files = _read_files(inputs, config, mappings or [], id_column, truth, encoding)
        if link and len(files) < 2:
            raise InputError(inputs[0], "--link needs at least two input files")
        if truth is not None:
            _require_truth(files, truth)
        started = time.perf_counter()
        with _progress() as progress:
            run = run_matching(
                files,
                link=link,
                spec=spec,
                model_path=model,
                default_country=country,
                seed=seed,
                train_sample=train_sample,
                progress=progress,
                workers=workers,
            )
        elapsed = time.perf_counter() - started
    except InputError as exc:
        _fail(str(exc))
        return
    for warning in run.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    try:
        run.write_clusters(out)
        console.print(f"wrote clusters to {out}")
        if pairs is not None:
            count = run.write_pairs(pairs)
            console.print(f"wrote {count:,} scored pairs to {pairs}")
        if save_model is not None:
            run.model.save(save_model)
            console.print(f"wrote the trained model to {save_model}")
    except OSError as exc:
        _fail(f"{exc.filename}: cannot write ({exc.strerror})")
    _print_summary(run, elapsed)
    if truth is not None:
        _print_truth_metrics(run, truth)


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def _read_files(
    inputs: Sequence[Path],
    config: Path | None,
    flags: Sequence[str],
    id_column: str | None,
    truth: str | None,
    encoding: str,
) -> list[InputFile]:
    from mdh.file_matching import FileMapping, load_config, parse_map_flags, read_input

    loaded = load_config(config)
    overrides = parse_map_flags(flags)
    files = []
    for path in inputs:
        base = loaded.for_file(path)
        mapping = FileMapping(
            columns={**base.columns, **overrides},
            id_column=id_column or base.id_column,
            truth_column=truth or base.truth_column,
        )
        files.append(read_input(path, mapping, encoding=encoding))
    names = [f.source for f in files]
    if len(set(names)) < len(names):
        files = [dataclasses.replace(f, source=str(f.path)) for f in files]
    return files


def _require_truth(files: Sequence[InputFile], column: str) -> None:
    from mdh.file_matching import InputError

    for file in files:
        if file.truth is None:
            raise InputError(file.path, "expected a truth column", column=column)


@contextmanager
def _progress() -> Iterator[Progress]:
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    with progress:
        yield progress


def _print_summary(run: MatchRun, elapsed: float) -> None:
    summary = run.summary()
    table = Table(title="Duplicates", show_header=False, title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("records", f"{summary.records:,}")
    table.add_row("clusters", f"{summary.clusters:,}")
    table.add_row("duplicate records", f"{summary.duplicate_records:,}")
    table.add_row("duplicate rate", f"{summary.duplicate_rate:.2%}")
    table.add_row("clusters with duplicates", f"{summary.clusters_with_duplicates:,}")
    table.add_row("largest cluster", f"{summary.largest_cluster:,}")
    for source, linked in run.linked_per_source().items():
        table.add_row(f"linked records in {source}", f"{linked:,}")
    phases = ", ".join(f"{name} {value:.1f} s" for name, value in run.seconds.items())
    table.add_row("time", f"{elapsed:.1f} s ({phases})")
    table.add_row("model", run.model.version)
    console.print(table)


def _print_truth_metrics(run: MatchRun, column: str) -> None:
    pairwise, bcubed = run.evaluate()
    table = Table(
        title=f"Against the truth column {column!r}",
        title_justify="left",
        caption="pairwise: pairs across files only" if run.link else None,
        caption_justify="left",
    )
    for name in ("metric", "precision", "recall", "F1"):
        table.add_column(name, justify="left" if name == "metric" else "right")
    table.add_row(
        "pairwise", f"{pairwise.precision:.4f}", f"{pairwise.recall:.4f}", f"{pairwise.f1:.4f}"
    )
    table.add_row("B-cubed", f"{bcubed.precision:.4f}", f"{bcubed.recall:.4f}", f"{bcubed.f1:.4f}")
    console.print(table)
    counts: dict[str, Any] = {
        "true pairs": pairwise.true_pairs,
        "predicted pairs": pairwise.predicted_pairs,
        "false positives": pairwise.false_positives,
        "false negatives": pairwise.false_negatives,
    }
    console.print(", ".join(f"{k} {v:,}" for k, v in counts.items()), highlight=False)
