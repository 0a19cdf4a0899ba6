"""Loading of the reference tables shipped in ``matching/data`` (package data, not cwd paths)."""

from __future__ import annotations

import csv
from importlib.resources import files


def read_table(name: str) -> list[dict[str, str]]:
    """The rows of ``matching/data/<name>`` as dicts keyed by its header.

    Lines starting with ``#`` and blank lines are comments. Values are stripped.
    """
    text = files("matching").joinpath("data", name).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return [
        {key: (value or "").strip() for key, value in row.items() if key is not None}
        for row in csv.DictReader(lines)
    ]
