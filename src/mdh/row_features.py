"""Rows of canonical fields to match features; small, so worker processes start fast.

`mdh match` standardizes big inputs in spawned worker processes. A worker imports only this
module and the feature standardizer, not the file readers (pandas, pyarrow) or the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RowChunk = tuple[tuple[str, ...], list[tuple[str | None, ...]], str | None]
"""Field names, rows of values in that order, and the default country."""


def to_attributes(
    fields: Mapping[str, str | None], *, default_country: str | None = None
) -> dict[str, Any]:
    """One row's canonical fields as the flat record ``standardize_record`` reads.

    Canonical field names are the names the standardizer understands, so the row passes
    through with its empty values dropped and the default country filled in.
    """
    attributes: dict[str, Any] = {name: value for name, value in fields.items() if value}
    if default_country and not attributes.get("country"):
        attributes["country"] = default_country
    return attributes


def standardize_rows(chunk: RowChunk) -> list[dict[str, Any]]:
    """Features of each row of a chunk, in order."""
    from matching.features import standardize_record

    names, rows, default_country = chunk
    return [
        dict(
            standardize_record(
                to_attributes(dict(zip(names, row, strict=True)), default_country=default_country)
            )
        )
        for row in rows
    ]
