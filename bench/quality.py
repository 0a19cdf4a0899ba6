"""Matching quality on labelled data: mdh vs Splink in the same run, on the same records.

For each data set both systems train without labels on the records themselves, then cluster
(dedupe) or link; the truth labels are used only to score the result. Scores are pairwise
precision / recall / F1 over the clusters (in link mode, pairs across the two sources only),
the same over the scored pairs before clustering, B-cubed F1, and for mdh the share of true
pairs that blocking kept. Times cover standardizing (mdh) or loading into DuckDB (Splink),
training, scoring and clustering.

    .venv/bin/python bench/quality.py [febrl3 febrl4 census_w2] [--markdown]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from datasets import CANONICAL_COLUMNS, LOADERS, LabelledDataset
from matching.batch import DECISION_MATCH
from matching.metrics import score_bcubed, score_pairs, score_pairwise
from mdh.file_matching import InputFile, run_matching
from splink_baseline import run_splink

# The spec `mdh match --spec NAME` would be given for each data set (no labels involved).
SPECS = {"febrl3": "febrl", "febrl4": "febrl", "census_w2": "census"}
TARGETS = {"febrl3": 0.998, "febrl4": 0.999, "census_w2": 0.97}


@dataclass(frozen=True)
class Scores:
    system: str
    precision: float
    recall: float
    f1: float
    pair_f1: float
    bcubed_f1: float
    seconds: float
    blocking_recall: float | None = None


def _input_files(dataset: LabelledDataset) -> list[InputFile]:
    """Each source as `mdh match` reads it with the config ``datasets.py --write`` writes."""
    files = []
    for source in dataset.sources:
        columns = [c for c in CANONICAL_COLUMNS if c in source.frame.columns]
        files.append(
            InputFile(
                path=Path(f"{dataset.name}_{source.name}.csv"),
                source=source.name,
                record_ids=list(source.frame["record_id"]),
                fields={column: list(source.frame[column]) for column in columns},
                truth=list(source.frame["truth"]),
                columns={column: column for column in columns},
            )
        )
    return files


def run_ours(dataset: LabelledDataset, spec: str) -> Scores:
    files = _input_files(dataset)
    link = dataset.mode == "link"
    started = time.perf_counter()
    run = run_matching(files, link=link, spec=spec)
    seconds = time.perf_counter() - started
    pairwise, bcubed = run.evaluate()
    keys = list(zip(run.sources, run.record_ids, strict=True))
    truth = dict(zip(keys, (t for f in files for t in f.truth or []), strict=True))
    sources = {key: key[0] for key in keys} if link else None
    scored = run.result.pairs
    matched = np.nonzero(scored.decision == DECISION_MATCH)[0]
    pairs = [
        (keys[i], keys[j]) for i, j in zip(scored.left[matched], scored.right[matched], strict=True)
    ]
    candidates = [(keys[i], keys[j]) for i, j in zip(scored.left, scored.right, strict=True)]
    return Scores(
        system="mdh",
        precision=pairwise.precision,
        recall=pairwise.recall,
        f1=pairwise.f1,
        pair_f1=score_pairs(pairs, truth, sources=sources).f1,
        bcubed_f1=bcubed.f1,
        seconds=seconds,
        blocking_recall=score_pairs(candidates, truth, sources=sources).recall,
    )


def run_baseline(dataset: LabelledDataset) -> Scores:
    frames = [source.frame for source in dataset.sources]
    names = [source.name for source in dataset.sources]
    started = time.perf_counter()
    run = run_splink(frames, names, dataset.columns, dataset.mode)
    seconds = time.perf_counter() - started
    combined = dataset.combined()
    merged = combined.merge(run.clusters, on=["source", "record_id"], how="left", validate="1:1")
    link = dataset.mode == "link"
    sources = list(merged["source"]) if link else None
    pairwise = score_pairwise(list(merged["cluster_id"]), list(merged["truth"]), sources=sources)
    bcubed = score_bcubed(list(merged["cluster_id"]), list(merged["truth"]))
    keys = list(zip(combined["source"], combined["record_id"], strict=True))
    truth = dict(zip(keys, combined["truth"], strict=True))
    links = run.links
    pairs = [
        ((a, b), (c, d))
        for a, b, c, d in zip(
            links["source_l"],
            links["record_id_l"],
            links["source_r"],
            links["record_id_r"],
            strict=True,
        )
    ]
    pair_scores = score_pairs(pairs, truth, sources={k: k[0] for k in keys} if link else None)
    return Scores(
        system="splink",
        precision=pairwise.precision,
        recall=pairwise.recall,
        f1=pairwise.f1,
        pair_f1=pair_scores.f1,
        bcubed_f1=bcubed.f1,
        seconds=seconds,
    )


def _row(name: str, scores: Scores) -> list[str]:
    blocking = "" if scores.blocking_recall is None else f"{scores.blocking_recall:.4f}"
    return [
        name,
        scores.system,
        f"{scores.precision:.4f}",
        f"{scores.recall:.4f}",
        f"{scores.f1:.4f}",
        f"{scores.pair_f1:.4f}",
        f"{scores.bcubed_f1:.4f}",
        blocking,
        f"{scores.seconds:.1f}",
    ]


HEADER = [
    "data set",
    "system",
    "precision",
    "recall",
    "F1",
    "pair F1",
    "B3 F1",
    "blocking recall",
    "time s",
]


def _print_table(rows: list[list[str]], markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(HEADER) + " |")
        print("|" + "|".join("---" for _ in HEADER) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADER)]
    print("  ".join(h.ljust(w) for h, w in zip(HEADER, widths, strict=True)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description="mdh vs Splink matching quality")
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(LOADERS)}")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--spec", help="use this spec for every data set instead of SPECS")
    args = parser.parse_args()
    names = args.names or list(LOADERS)
    unknown = set(names) - set(LOADERS)
    if unknown:
        parser.error(f"unknown data set(s) {sorted(unknown)}; expected any of {list(LOADERS)}")
    rows: list[list[str]] = []
    ratios: list[list[str]] = []
    for name in names:
        dataset = LOADERS[name]()
        ours = run_ours(dataset, args.spec or SPECS[name])
        theirs = run_baseline(dataset)
        rows += [_row(name, ours), _row(name, theirs)]
        met = "met" if ours.f1 >= TARGETS[name] else "MISSED"
        ratios.append(
            [
                name,
                f"{ours.f1 / theirs.f1:.3f}" if theirs.f1 else "inf",
                f"{ours.seconds / theirs.seconds:.2f}",
                f">= {TARGETS[name]}",
                f"{ours.f1:.4f} ({met})",
            ]
        )
        print(
            f"{name}: mdh F1 {ours.f1:.4f} in {ours.seconds:.1f} s; "
            f"Splink F1 {theirs.f1:.4f} in {theirs.seconds:.1f} s",
            flush=True,
        )
    print()
    _print_table(rows, args.markdown)
    print()
    header = ["data set", "F1 mdh/Splink", "time mdh/Splink", "target F1", "mdh F1"]
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for row in ratios:
            print("| " + " | ".join(row) + " |")
    else:
        for row in [header, *ratios]:
            print("  ".join(c.ljust(16) for c in row))


if __name__ == "__main__":
    main()
