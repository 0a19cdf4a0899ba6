"""Matching records from files: read CSV/Parquet extracts, map their columns, validate them.

`mdh match` reads one or more files, maps each file's columns onto canonical field names with
a mapping (a YAML/JSON config file and/or ``canonical=column`` pairs), checks that every mapped
column exists and holds what its field expects, and turns each row into the canonical
attributes the matcher standardizes. Anything wrong with the input raises ``InputError``
naming the file, the column and what was expected, so the command can exit with code 2
instead of a traceback.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from rich.progress import Progress

from matching import (
    DedupeResult,
    MatchingError,
    MatchModel,
    MatchSpec,
    dedupe,
    default_spec,
    load_spec,
    shipped_spec,
    train,
)
from matching.batch import DECISION_NO_MATCH
from matching.metrics import (
    BCubedScores,
    DuplicateSummary,
    PairwiseScores,
    score_bcubed,
    score_pairwise,
    summarize_duplicates,
)
from mdh.row_features import RowChunk, standardize_rows

# Canonical field -> what a column mapped onto it should hold (used in error messages).
CANONICAL_FIELDS: dict[str, str] = {
    "kind": "'person' or 'organization'",
    "legal_name": "an organisation name",
    "given_name": "a given (first) name",
    "middle_name": "a middle name or initial",
    "family_name": "a family name (surname)",
    "email": "an e-mail address (several separated by ';')",
    "phone": "a phone number (several separated by ';')",
    "address": "a street address line, e.g. '12 Main St Apt 4' (instead of street etc.)",
    "house_number": "a house number",
    "street": "a street name",
    "unit": "a unit, flat or suite",
    "address_line2": "a second address line",
    "postcode": "a postal code",
    "city": "a city or locality",
    "region": "a state, province or region",
    "country": "a country (ISO code or name)",
    "dob": "a date of birth",
    "tax_id": "a tax id (VAT number, EIN)",
    "national_id": "a national id (SSN and similar)",
    "website": "a website or domain",
}

_CSV_SUFFIXES = (".csv", ".tsv", ".txt")
_PARQUET_SUFFIXES = (".parquet", ".pq")


class InputError(Exception):
    """A problem with an input or mapping file, reported to the user without a traceback.

    ``path`` is the offending file, ``column`` the column or config key (if one is to blame)
    and ``expected`` what should have been there.
    """

    def __init__(self, path: Path | str, expected: str, *, column: str | None = None) -> None:
        self.path = str(path)
        self.column = column
        self.expected = expected
        where = f"{self.path}: column {column!r}: " if column else f"{self.path}: "
        super().__init__(where + expected)


@dataclass(frozen=True)
class FileMapping:
    """How one file's columns map onto canonical fields."""

    columns: Mapping[str, str]
    """Canonical field -> column name in the file."""
    id_column: str | None = None
    """Column holding the record id; None: the 1-based row number."""
    truth_column: str | None = None
    """Column holding the true entity label (evaluation only)."""


@dataclass(frozen=True)
class MatchConfig:
    """A mapping for every input file: defaults plus per-file overrides keyed by file name."""

    default: FileMapping
    per_file: Mapping[str, FileMapping] = field(default_factory=dict)

    def for_file(self, path: Path) -> FileMapping:
        for key in (str(path), path.name, path.stem):
            if key in self.per_file:
                return self.per_file[key]
        return self.default


@dataclass(frozen=True)
class InputFile:
    """The mapped columns of one input file, as text (missing values are ``None``)."""

    path: Path
    source: str
    """The name records of this file carry in outputs (the file name)."""
    record_ids: list[str]
    fields: dict[str, list[str | None]]
    """Canonical field -> one value per record."""
    truth: list[str | None] | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    """Canonical field -> the file's column it was read from (for messages)."""

    def __len__(self) -> int:
        return len(self.record_ids)


def _check_columns(source: str, mapping: Mapping[str, Any]) -> dict[str, str]:
    columns: dict[str, str] = {}
    for canonical, column in mapping.items():
        if canonical not in CANONICAL_FIELDS:
            raise InputError(
                source,
                f"unknown canonical field {canonical!r}; expected one of "
                + ", ".join(CANONICAL_FIELDS),
                column=canonical,
            )
        if not isinstance(column, str) or not column:
            raise InputError(source, "expected a column name (text)", column=canonical)
        columns[canonical] = column
    return columns


def parse_map_flags(flags: Sequence[str]) -> dict[str, str]:
    """``canonical=column`` pairs from the command line."""
    columns: dict[str, str] = {}
    for flag in flags:
        canonical, sep, column = flag.partition("=")
        if not sep or not canonical.strip() or not column.strip():
            raise InputError("--map", f"expected canonical=column, got {flag!r}")
        columns[canonical.strip()] = column.strip()
    return _check_columns("--map", columns)


def _file_mapping(source: str, raw: Any, base: FileMapping | None) -> FileMapping:
    if not isinstance(raw, Mapping):
        raise InputError(source, "expected a mapping with 'columns' (and optionally 'id')")
    unknown = set(raw) - {"columns", "id", "truth", "files"}
    if unknown:
        raise InputError(
            source,
            f"unknown key(s) {sorted(unknown)}; expected 'columns', 'id', 'truth' or 'files'",
        )
    raw_columns = raw.get("columns", {})
    if not isinstance(raw_columns, Mapping):
        raise InputError(source, "'columns' must map canonical fields to column names")
    columns = {**(base.columns if base else {}), **_check_columns(source, raw_columns)}
    for key in ("id", "truth"):
        if key in raw and not isinstance(raw[key], str):
            raise InputError(source, f"'{key}' must be a column name (text)", column=key)
    return FileMapping(
        columns=columns,
        id_column=raw.get("id", base.id_column if base else None),
        truth_column=raw.get("truth", base.truth_column if base else None),
    )


def load_config(path: Path | None) -> MatchConfig:
    """Read a YAML or JSON mapping file (or an empty mapping when ``path`` is None).

    The file holds ``columns`` (canonical field -> column), optional ``id`` and ``truth``
    columns, and optional ``files``: per-file overrides keyed by file name.
    """
    if path is None:
        return MatchConfig(default=FileMapping(columns={}))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(path, f"cannot read the mapping file ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise InputError(path, "expected a UTF-8 YAML or JSON mapping file") from exc
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InputError(path, f"expected YAML or JSON: {exc}") from exc
    default = _file_mapping(str(path), raw or {}, None)
    per_file: dict[str, FileMapping] = {}
    files = (raw or {}).get("files", {})
    if not isinstance(files, Mapping):
        raise InputError(path, "'files' must map file names to mappings", column="files")
    for name, override in files.items():
        per_file[str(name)] = _file_mapping(f"{path} (files.{name})", override, default)
    return MatchConfig(default=default, per_file=per_file)


def _decode_error(path: Path, encoding: str) -> InputError:
    """Point at the line and column of the first undecodable byte.

    pandas reports offsets within its read buffer, so the file is decoded again here.
    """
    data = path.read_bytes()
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        start = exc.start
    else:  # pragma: no cover - pandas failed on bytes Python decodes; report the file only
        return InputError(path, f"expected {encoding} text (pass --encoding to read another)")
    line_start = data.rfind(b"\n", 0, start) + 1
    line_number = data.count(b"\n", 0, start) + 1
    header_end = data.find(b"\n")
    header = data[: header_end if header_end >= 0 else len(data)].decode(encoding, "replace")
    columns = next(csv.reader([header]), [])
    prefix = data[line_start:start].decode(encoding, "replace")
    field_index = len(next(csv.reader([prefix]), [""])) - 1 if prefix else 0
    column = columns[field_index] if 0 <= field_index < len(columns) else None
    bad = data[start : start + 1].hex()
    return InputError(
        path,
        f"line {line_number}: byte 0x{bad} is not valid {encoding}; expected {encoding} text "
        "(pass --encoding to read another encoding)",
        column=column,
    )


def _read_csv(path: Path, needed: Sequence[str], encoding: str) -> pd.DataFrame:
    separator = "\t" if path.suffix == ".tsv" else ","
    try:
        header = pd.read_csv(path, nrows=0, sep=separator, encoding=encoding)
    except UnicodeDecodeError as exc:
        raise _decode_error(path, encoding) from exc
    except pd.errors.EmptyDataError as exc:
        raise InputError(path, "the file is empty; expected a header row") from exc
    except (pd.errors.ParserError, ValueError) as exc:
        raise InputError(path, f"expected CSV: {exc}") from exc
    _require_columns(path, list(header.columns), needed)
    try:
        return pd.read_csv(
            path,
            sep=separator,
            encoding=encoding,
            usecols=list(dict.fromkeys(needed)),
            dtype=str,
            keep_default_na=False,
        )
    except UnicodeDecodeError as exc:
        raise _decode_error(path, encoding) from exc
    except (pd.errors.ParserError, ValueError) as exc:
        raise InputError(path, f"expected CSV: {exc}") from exc


_TEXT_LIKE = (
    pa.types.is_string,
    pa.types.is_large_string,
    pa.types.is_integer,
    pa.types.is_decimal,
    pa.types.is_dictionary,
    pa.types.is_null,
)
_DATE_LIKE = (pa.types.is_date, pa.types.is_timestamp)


def _read_parquet(path: Path, needed: Sequence[str], role: Mapping[str, str]) -> pd.DataFrame:
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(path, f"expected a Parquet file: {exc}") from exc
    _require_columns(path, schema.names, needed)
    for column in dict.fromkeys(needed):
        kind = schema.field(column).type
        allowed = _TEXT_LIKE + (_DATE_LIKE if role.get(column) == "dob" else ())
        if not any(check(kind) for check in allowed):
            what = CANONICAL_FIELDS.get(role.get(column, ""), "record ids or labels")
            raise InputError(
                path,
                f"has type {kind}; expected text holding {what}",
                column=column,
            )
    table = pq.read_table(path, columns=list(dict.fromkeys(needed)))
    frame = pd.DataFrame()
    for column in table.column_names:
        series = table.column(column).to_pandas()
        text = series.map(_text_of)
        frame[column] = text
    return frame


def _text_of(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if hasattr(value, "isoformat"):
        return str(value.isoformat())[:10]
    return str(value)


def _require_columns(path: Path, present: Sequence[str], needed: Sequence[str]) -> None:
    for column in needed:
        if column not in present:
            raise InputError(
                path,
                "not found; expected a column of that name (the file has: "
                + ", ".join(map(str, present))
                + ")",
                column=column,
            )


def read_input(path: Path, mapping: FileMapping, *, encoding: str = "utf-8") -> InputFile:
    """Read the mapped columns of one CSV or Parquet file.

    Raises:
        InputError: unknown file type, a mapped column missing, a column of the wrong type,
            undecodable bytes, duplicate or empty record ids.
    """
    if not mapping.columns:
        raise InputError(
            path,
            "no columns are mapped; pass --config FILE or --map canonical=column "
            f"(canonical fields: {', '.join(CANONICAL_FIELDS)})",
        )
    role = {column: canonical for canonical, column in mapping.columns.items()}
    needed = list(mapping.columns.values())
    for extra in (mapping.id_column, mapping.truth_column):
        if extra is not None:
            needed.append(extra)
    suffix = path.suffix.lower()
    if suffix in _CSV_SUFFIXES:
        frame = _read_csv(path, needed, encoding)
    elif suffix in _PARQUET_SUFFIXES:
        frame = _read_parquet(path, needed, role)
    else:
        raise InputError(path, "unknown file type; expected .csv, .tsv or .parquet")
    if mapping.id_column is not None:
        record_ids = [value.strip() for value in frame[mapping.id_column]]
        _check_ids(path, mapping.id_column, record_ids)
    else:
        record_ids = [str(i) for i in range(1, len(frame) + 1)]
    fields = {
        canonical: [_blank_to_none(value) for value in frame[column]]
        for canonical, column in mapping.columns.items()
    }
    truth = (
        None
        if mapping.truth_column is None
        else [_blank_to_none(value) for value in frame[mapping.truth_column]]
    )
    return InputFile(
        path=path,
        source=path.name,
        record_ids=record_ids,
        fields=fields,
        truth=truth,
        columns=dict(mapping.columns),
    )


def _blank_to_none(value: str) -> str | None:
    stripped = value.strip()
    return stripped or None


def _check_ids(path: Path, column: str, record_ids: Sequence[str]) -> None:
    seen: set[str] = set()
    for row, record_id in enumerate(record_ids, start=1):
        if not record_id:
            raise InputError(
                path, f"row {row}: empty record id; expected a unique id per row", column=column
            )
        if record_id in seen:
            raise InputError(
                path,
                f"row {row}: record id {record_id!r} appears twice; expected unique ids",
                column=column,
            )
        seen.add(record_id)


# --- running the engine -----------------------------------------------------------------------

# Canonical field -> the feature a readable value of it produces, for type checks.
_TYPED_FIELDS = {"dob": "dob", "email": "emails", "phone": "phones"}
# A typed column is rejected when more than this share of its non-empty values is unreadable:
# the column is probably mapped to the wrong field. Fewer bad values are reported as a warning.
_MAX_UNREADABLE_SHARE = 0.5
# Random pairs drawn to estimate u; a small input has fewer pairs than that.
_U_PAIRS = 1_000_000
# Records a model is trained on by default: a uniform sample of a bigger input estimates the
# same parameters (see matching.training.train) at a fraction of the cost; smaller inputs are
# trained on whole.
TRAIN_SAMPLE = 200_000
# Standardizing is pure Python; inputs this large are spread over the cores in chunks.
_PARALLEL_FROM = 50_000
_MAX_WORKERS = 8
_CHUNK_ROWS = 5_000


@dataclass
class MatchRun:
    """Everything one `mdh match` run produced, in input order."""

    files: list[InputFile]
    sources: list[str]
    record_ids: list[str]
    features: list[dict[str, Any]]
    model: MatchModel
    result: DedupeResult
    link: bool
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time per phase: ``standardize``, ``train`` (absent with a given model), ``match``."""
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    """CPU time per phase, worker processes included."""

    def __post_init__(self) -> None:
        several = len(self.files) > 1
        self.labels = [
            f"{source}:{record_id}" if several else record_id
            for source, record_id in zip(self.sources, self.record_ids, strict=True)
        ]
        clusters = self.result.clusters
        self.cluster_ids = [self.labels[clusters[k]] for k in range(len(self.labels))]

    def write_clusters(self, path: Path) -> None:
        """``source,record_id,cluster_id``, one row per input record, in input order."""
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["source", "record_id", "cluster_id"])
            writer.writerows(zip(self.sources, self.record_ids, self.cluster_ids, strict=True))

    def write_pairs(self, path: Path) -> int:
        """Scored pairs with a match or review decision, with explanations, one JSON a line."""
        scores = self.result.pairs
        keep = np.nonzero(scores.decision != DECISION_NO_MATCH)[0]
        order = keep[np.argsort(-scores.weight[keep], kind="stable")]
        with path.open("w", encoding="utf-8") as handle:
            for k in order.tolist():
                i, j = int(scores.left[k]), int(scores.right[k])
                scored = self.model.score(self.features[i], self.features[j])
                line = {
                    "left": {"source": self.sources[i], "record_id": self.record_ids[i]},
                    "right": {"source": self.sources[j], "record_id": self.record_ids[j]},
                    "probability": scored.probability,
                    "weight": scored.weight,
                    "decision": scored.decision,
                    "hard_conflict": scored.hard_conflict,
                    "same_cluster": self.cluster_ids[i] == self.cluster_ids[j],
                    "explanation": scored.explain(),
                    "waterfall": scored.explain_text(),
                }
                handle.write(json.dumps(line, default=str) + "\n")
        return len(order)

    def summary(self) -> DuplicateSummary:
        return summarize_duplicates(self.cluster_ids)

    def linked_per_source(self) -> dict[str, int]:
        """Link mode: per file, its records whose cluster holds a record of another file."""
        if not self.link:
            return {}
        sources_of: dict[str, set[str]] = {}
        for cluster, source in zip(self.cluster_ids, self.sources, strict=True):
            sources_of.setdefault(cluster, set()).add(source)
        linked = {file.source: 0 for file in self.files}
        for cluster, source in zip(self.cluster_ids, self.sources, strict=True):
            if len(sources_of[cluster]) > 1:
                linked[source] += 1
        return linked

    def evaluate(self) -> tuple[PairwiseScores, BCubedScores]:
        """Pairwise (across files only, in link mode) and B-cubed scores against the truth."""
        truth: list[str | None] = []
        for file in self.files:
            truth.extend(file.truth or [None] * len(file))
        pairwise = score_pairwise(
            self.cluster_ids, truth, sources=self.sources if self.link else None
        )
        return pairwise, score_bcubed(self.cluster_ids, truth)


def _chunks(file: InputFile, default_country: str | None) -> Iterator[RowChunk]:
    names = tuple(file.fields)
    rows = list(zip(*(file.fields[name] for name in names), strict=True))
    for start in range(0, len(rows), _CHUNK_ROWS):
        yield names, rows[start : start + _CHUNK_ROWS], default_country


def standardize_files(
    files: Sequence[InputFile],
    default_country: str | None,
    progress: Progress | None,
    *,
    workers: int = 0,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Features of every record, in input order, and warnings about unreadable values.

    Big inputs are standardized in chunks by ``workers`` processes (0: one per core).

    The first chunk of each file is type-checked as soon as it is done, so a column mapped
    to the wrong field fails fast rather than after the whole file.
    """
    progress = progress or Progress(disable=True)
    total = sum(len(f) for f in files)
    task = progress.add_task("standardizing", total=total)
    cores = os.cpu_count() or 1
    workers = min(workers or cores, _MAX_WORKERS) if total >= _PARALLEL_FROM else 1
    # Spawned (not forked) workers: a fork would share, then gradually copy, the parent's
    # whole heap (every input row) although a worker only needs its chunk.
    pool = (
        ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        if workers > 1
        else None
    )
    run = pool.map if pool is not None else map
    features: list[dict[str, Any]] = []
    warnings: list[str] = []
    try:
        for file in files:
            file_features: list[dict[str, Any]] = []
            for chunk in run(standardize_rows, _chunks(file, default_country)):
                if not file_features:
                    _check_typed_columns(file, chunk)
                file_features.extend(chunk)
                progress.advance(task, len(chunk))
            warnings += _check_typed_columns(file, file_features)
            features.extend(file_features)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return features, warnings


def _check_typed_columns(file: InputFile, features: Sequence[Mapping[str, Any]]) -> list[str]:
    """Reject a typed column (dates, e-mails, phones) whose values mostly cannot be read."""
    warnings = []
    for canonical, feature in _TYPED_FIELDS.items():
        values = file.fields.get(canonical)
        if values is None:
            continue
        present = 0
        bad_rows: list[int] = []
        checked = zip(values[: len(features)], features, strict=True)
        for row, (value, record) in enumerate(checked, start=1):
            if value is None:
                continue
            present += 1
            if not record.get(feature):
                bad_rows.append(row)
        if not bad_rows:
            continue
        column = _column_of(file, canonical)
        example = values[bad_rows[0] - 1]
        what = f"{len(bad_rows):,} of {present:,} values are not {CANONICAL_FIELDS[canonical]}"
        if len(bad_rows) > _MAX_UNREADABLE_SHARE * present:
            raise InputError(
                file.path,
                f"expected {CANONICAL_FIELDS[canonical]} ({canonical}); {what}, "
                f"e.g. {example!r} in row {bad_rows[0]}",
                column=column,
            )
        warnings.append(
            f"{file.path}: column {column!r}: {what} (ignored), e.g. {example!r} in row "
            f"{bad_rows[0]}"
        )
    return warnings


def _column_of(file: InputFile, canonical: str) -> str:
    return file.columns.get(canonical, canonical)


def _load_model(spec: str | None, model_path: Path | None) -> tuple[MatchModel | None, MatchSpec]:
    """A trained model from a file, or the spec to train (a file or a shipped name)."""
    if model_path is not None:
        try:
            model = MatchModel.load(model_path)
        except MatchingError as exc:
            raise InputError(model_path, f"expected a saved mdh match model: {exc}") from exc
        return model, model.spec
    if spec is None:
        return None, default_spec()
    try:
        if Path(spec).is_file():
            return None, load_spec(spec)
        return None, shipped_spec(spec)
    except MatchingError as exc:
        raise InputError(spec, f"expected a match spec file or a shipped spec name: {exc}") from exc


def _possible_pairs(files: Sequence[InputFile], link: bool) -> int:
    sizes = [len(file) for file in files]
    total = sum(sizes)
    if link:
        return (total * total - sum(n * n for n in sizes)) // 2
    return total * (total - 1) // 2


class _PhaseClock:
    """Wall and CPU time per phase; CPU counts finished worker processes too."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @staticmethod
    def _cpu() -> float:
        times = os.times()
        return times.user + times.system + times.children_user + times.children_system

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), self._cpu()
        yield
        self.wall[name] = time.perf_counter() - wall
        self.cpu[name] = self._cpu() - cpu


def run_matching(
    files: Sequence[InputFile],
    *,
    link: bool,
    spec: str | None = None,
    model_path: Path | None = None,
    default_country: str | None = None,
    seed: int = 0,
    train_sample: int = TRAIN_SAMPLE,
    progress: Progress | None = None,
    workers: int = 0,
) -> MatchRun:
    """Standardize every record, train (unless a model is given), then dedupe or link.

    Args:
        seed: seeds the training sample and training's random pairs.
        train_sample: train on a seeded uniform sample of this many records (0, or at least
            the number of records: on all of them); every record is still matched. The
            trained model's ``training["records"]`` says how many it saw.
        workers: processes for standardizing and threads for comparisons (0: all cores).

    Raises:
        InputError: a typed column that cannot be read, or an unreadable spec or model.
    """
    if train_sample == 1:
        raise InputError("--train-sample", "expected 0 (all records) or at least 2 records")
    threads = workers or -1  # the engine's spelling of "all cores"
    progress = progress or Progress(disable=True)
    model, match_spec = _load_model(spec, model_path)
    clock = _PhaseClock()
    with clock.phase("standardize"):
        features, warnings = standardize_files(files, default_country, progress, workers=workers)
    sources = [file.source for file in files for _ in range(len(file))]
    record_ids = [record_id for file in files for record_id in file.record_ids]
    groups = sources if link else None
    if model is None:
        if len(features) < 2:
            raise InputError(files[0].path, "expected at least two records to train a model")
        task = progress.add_task("training", total=None)
        with clock.phase("train"):
            model = train(
                match_spec,
                features,
                groups=groups,
                sample=train_sample,
                seed=seed,
                u_pairs=min(_U_PAIRS, _possible_pairs(files, link)),
                workers=threads,
            )
        progress.update(task, total=1, completed=1)
    task = progress.add_task("matching", total=None)
    with clock.phase("match"):
        result = dedupe(
            model, features, ids=list(range(len(features))), groups=groups, workers=threads
        )
    progress.update(task, total=1, completed=1)
    return MatchRun(
        files=list(files),
        sources=sources,
        record_ids=record_ids,
        features=features,
        model=model,
        result=result,
        link=link,
        warnings=warnings,
        seconds=clock.wall,
        cpu_seconds=clock.cpu,
    )
