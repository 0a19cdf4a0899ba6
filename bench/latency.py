"""Incremental match latency against 100k and 1M stored customers, Splink's predict_between for
comparison, and batch dedupe of 1M records (wall time and peak memory).

Each part runs in its own child process so that its peak RSS (``ru_maxrss``, read in that
process) is its own. The parts:

- ``incremental --store N``: N synthetic customers are standardized and filed in the model's
  ``MatchIndex`` (the model is trained without labels on up to 100k of them); then new records
  (half noisy copies of stored customers, half new people and companies) are matched one at a
  time. Latency is measured per record for standardize + match (what the hub does per change)
  and for match alone; p50/p95/p99 in ms, after a warm-up.
- ``splink --store N``: an untuned Splink model trained on the same N customers;
  ``linker.inference.predict_between(store, one_new_record)`` is timed for a few records.
- ``batch --records N``: N records (about 14% noisy duplicates) standardized, trained on and
  deduplicated in one process, as `mdh match` does; time per phase, peak RSS, and pairwise
  F1 against the synthetic truth.
- ``splink-batch --records N``: the same records through Splink (train, predict, cluster).

    .venv/bin/python bench/latency.py                      # 100k and 1M, Splink at 100k
    .venv/bin/python bench/latency.py --with-splink-batch  # ... and Splink on the 1M batch
    .venv/bin/python bench/latency.py --quick              # 100k only
    .venv/bin/python bench/latency.py --part incremental --store 100000 --json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from matching import MatchIndex, MatchModel, default_spec, train
from matching.metrics import score_pairwise
from mdh.file_matching import InputFile, run_matching, standardize_files
from mdh.row_features import to_attributes
from synthetic import Record, generate_customers, new_arrivals, with_duplicates

TRAINING_SAMPLE = 100_000
ARRIVALS = 2_000
WARM_UP = 200
SPLINK_SAMPLES = 12
_META = ("record_id", "entity")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (the standardizing workers)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _attributes(record: Record) -> dict[str, Any]:
    return to_attributes({k: v for k, v in record.items() if k not in _META})


def _percentiles(samples_s: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples_s)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    return {
        "p50_ms": at(0.50),
        "p95_ms": at(0.95),
        "p99_ms": at(0.99),
        "max_ms": ordered[-1] * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
    }


def _train(features: Sequence[dict[str, Any]], seed: int = 0) -> tuple[MatchModel, float]:
    started = time.perf_counter()
    sample = features[:TRAINING_SAMPLE]
    model = train(default_spec(), sample, seed=seed)
    return model, time.perf_counter() - started


def _store(n: int, seed: int) -> list[Record]:
    """``n`` records of about ``n / 1.16`` customers: 10% of them have 1-3 noisy copies, as
    source records in a hub do (and as the data a model is trained on must have)."""
    originals = round(n / 1.16)
    return with_duplicates(generate_customers(originals, seed=seed), 0.10, seed=seed)[:n]


def part_incremental(store_size: int) -> dict[str, Any]:
    store = _store(store_size, seed=1)
    entity_of = {r["record_id"]: r["entity"] for r in store}
    arrivals = new_arrivals(store, ARRIVALS + WARM_UP, seed=2)
    started = time.perf_counter()
    features, _ = standardize_files([_input_file(store)], None, None)
    standardize_s = time.perf_counter() - started
    model, train_s = _train(features)
    index = MatchIndex(model)
    started = time.perf_counter()
    for record, record_features in zip(store, features, strict=True):
        index.add(record["record_id"], record_features)
    index_s = time.perf_counter() - started
    del features
    gc.collect()
    end_to_end: list[float] = []
    match_only: list[float] = []
    match_cpu: list[float] = []
    candidates: list[int] = []
    found = missed = false_matches = duplicates = 0
    for k, record in enumerate(arrivals):
        attributes = _attributes(record)
        t0 = time.perf_counter()
        record_features = model.standardize(attributes)
        t1 = time.perf_counter()
        c1 = time.process_time()
        hits = index.match_one(record_features)
        c2 = time.process_time()
        t2 = time.perf_counter()
        if k < WARM_UP:
            continue
        end_to_end.append(t2 - t0)
        match_only.append(t2 - t1)
        match_cpu.append(c2 - c1)
        candidates.append(len(index.candidates(record_features)))
        best = next((h for h in hits if h.decision == "match"), None)
        if str(record["entity"]).startswith("new"):
            false_matches += best is not None
        else:
            duplicates += 1
            if best is not None and entity_of[best.candidate_id] == record["entity"]:
                found += 1
            else:
                missed += 1
    return {
        "part": "incremental",
        "store": store_size,
        "arrivals": len(end_to_end),
        "standardize_us_per_record": standardize_s / store_size * 1e6,
        "train_s": train_s,
        "index_build_s": index_s,
        "end_to_end": _percentiles(end_to_end),
        "match_only": _percentiles(match_only),
        # CPU time of the same calls: a wall-time tail far above it is the process waiting
        # for a core (other work on the machine), not matching work.
        "match_only_cpu": _percentiles(match_cpu),
        "mean_candidates": statistics.fmean(candidates),
        "duplicates_found": found / duplicates if duplicates else None,
        "new_records_falsely_matched": false_matches / (len(end_to_end) - duplicates),
        "peak_rss_mb": _peak_rss_mb(),
    }


SPLINK_COLUMNS = [
    "given_name",
    "family_name",
    "legal_name",
    "dob",
    "email",
    "phone",
    "address",
    "city",
    "region",
    "postcode",
    "tax_id",
]


def _frame(records: Sequence[Record]) -> Any:
    import pandas as pd

    frame = pd.DataFrame.from_records(list(records))
    for column in ["record_id", *SPLINK_COLUMNS]:
        if column not in frame.columns:
            frame[column] = None
    return frame[["record_id", *SPLINK_COLUMNS]].astype(object).where(frame.notna(), None)


def _to_pandas(table: Any) -> Any:
    return table.as_pandas_dataframe()


def part_splink(store_size: int) -> dict[str, Any]:
    from splink import DuckDBAPI

    from splink_baseline import build_linker
    from splink_baseline import train as train_splink

    store = _store(store_size, seed=1)
    arrivals = new_arrivals(store, SPLINK_SAMPLES + 2, seed=2)
    db_api = DuckDBAPI()
    started = time.perf_counter()
    linker = build_linker([_frame(store)], ["store"], SPLINK_COLUMNS, "dedupe", db_api=db_api)
    train_splink(linker, SPLINK_COLUMNS)
    for column in ("given_name", "family_name", "legal_name"):
        linker.table_management.compute_tf_table(column)
    train_s = time.perf_counter() - started
    store_table = next(iter(linker._input_tables_dict.values()))
    samples: list[float] = []
    for k, record in enumerate(arrivals):
        one = _frame([record]).rename(columns={"record_id": "unique_id"})
        t0 = time.perf_counter()
        new_table = db_api.register(one, table_name=f"new_{k}")
        predictions = linker.inference.predict_between(
            store_table, new_table, threshold_match_probability=0.5, warning_mode="never"
        )
        _to_pandas(predictions)
        elapsed = time.perf_counter() - t0
        if k >= 2:
            samples.append(elapsed)
    return {
        "part": "splink",
        "store": store_size,
        "samples": len(samples),
        "train_s": train_s,
        "predict_between": _percentiles(samples),
        "peak_rss_mb": _peak_rss_mb(),
    }


def _batch_records(n: int) -> list[Record]:
    return _store(n, seed=5)


def _input_file(records: Sequence[Record]) -> InputFile:
    """Records as `mdh match` would read them from one CSV file."""
    columns = sorted({k for r in records for k in r} - set(_META))
    return InputFile(
        path=Path("synthetic.csv"),
        source="synthetic.csv",
        record_ids=[str(r["record_id"]) for r in records],
        fields={c: [r.get(c) for r in records] for c in columns},
        truth=[str(r["entity"]) for r in records],
        columns={c: c for c in columns},
    )


class _TreeMemory:
    """Samples the RSS of this process plus its children (the standardizing workers)."""

    def __init__(self, interval_s: float = 0.25) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval_s = interval_s
        self._stop = threading.Event()
        self.peak_mb = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> float:
        import psutil

        total = 0
        for process in [self._process, *self._process.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except psutil.Error:
                continue
        return total / 2**20

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.peak_mb = max(self.peak_mb, self._sample())

    def __enter__(self) -> _TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def part_batch(n: int) -> dict[str, Any]:
    """The `mdh match` pipeline (minus CSV parsing) on ``n`` records, in this process."""
    records = _batch_records(n)
    files = [_input_file(records)]
    del records
    gc.collect()
    rss_before = _peak_rss_mb()
    cpu_before = _cpu_s()
    started = time.perf_counter()
    with _TreeMemory() as tree:
        run = run_matching(files, link=False, spec="customers")
    total_s = time.perf_counter() - started
    cpu_s = _cpu_s() - cpu_before
    scores, _ = run.evaluate()
    return {
        "part": "batch",
        "records": len(run.features),
        "standardize_s": run.seconds["standardize"],
        "train_s": run.seconds["train"],
        "dedupe_s": run.seconds["match"],
        "total_s": total_s,
        "cpu_s": cpu_s,
        "cpu_phases_s": run.cpu_seconds,
        "candidate_pairs": len(run.result.pairs),
        "precision": scores.precision,
        "recall": scores.recall,
        "f1": scores.f1,
        "rss_before_mb": rss_before,
        "peak_rss_mb": _peak_rss_mb(),
        "peak_rss_tree_mb": tree.peak_mb,
    }


def part_splink_batch(n: int) -> dict[str, Any]:
    import pandas as pd

    from splink_baseline import run_splink

    records = _batch_records(n)
    truth = {str(r["record_id"]): str(r["entity"]) for r in records}
    frame = _frame(records)
    del records
    gc.collect()
    rss_before = _peak_rss_mb()
    cpu_before = _cpu_s()
    started = time.perf_counter()
    run = run_splink([frame], ["records"], SPLINK_COLUMNS, "dedupe")
    total_s = time.perf_counter() - started
    cpu_s = _cpu_s() - cpu_before
    clusters: pd.DataFrame = run.clusters
    scores = score_pairwise(list(clusters["cluster_id"]), [truth[i] for i in clusters["record_id"]])
    return {
        "part": "splink-batch",
        "records": len(frame),
        "total_s": total_s,
        "cpu_s": cpu_s,
        "precision": scores.precision,
        "recall": scores.recall,
        "f1": scores.f1,
        "rss_before_mb": rss_before,
        "peak_rss_mb": _peak_rss_mb(),
    }


PARTS = {
    "incremental": part_incremental,
    "splink": part_splink,
    "batch": part_batch,
    "splink-batch": part_splink_batch,
}


def _child(part: str, size: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--part", part, "--size", str(size), "--json"]
    print(f"... {part} {size:,}", file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        return {"part": part, "size": size, "error": done.stderr.strip().splitlines()[-1:]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _machine() -> str:
    import psutil

    memory_gb = psutil.virtual_memory().total / 2**30
    return (
        f"{os.cpu_count()} cores, {memory_gb:.0f} GB, Python {platform.python_version()}, "
        f"{platform.platform()}"
    )


def _report(results: Sequence[dict[str, Any]]) -> None:
    print(f"machine: {_machine()}")
    print()
    print("| part | size | p50 ms | p95 ms | p99 ms | notes |")
    print("|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['part']} | {r['size']:,} | | | | failed: {r['error']} |")
            continue
        if r["part"] == "incremental":
            for label in ("end_to_end", "match_only", "match_only_cpu"):
                p = r[label]
                print(
                    f"| incremental {label.replace('_', ' ')} | {r['store']:,} | "
                    f"{p['p50_ms']:.2f} | {p['p95_ms']:.2f} | {p['p99_ms']:.2f} | "
                    f"{r['arrivals']:,} records, max {p['max_ms']:.1f} ms |"
                )
            print(
                f"| (incremental setup) | {r['store']:,} | | | | standardize "
                f"{r['standardize_us_per_record']:.0f} µs/record, train {r['train_s']:.1f} s, "
                f"index {r['index_build_s']:.1f} s, {r['mean_candidates']:.0f} candidates "
                f"per record, duplicates found {r['duplicates_found']:.1%}, new records "
                f"falsely matched {r['new_records_falsely_matched']:.1%}, peak RSS "
                f"{r['peak_rss_mb']:,.0f} MB |"
            )
        elif r["part"] == "splink":
            p = r["predict_between"]
            print(
                f"| Splink predict_between | {r['store']:,} | {p['p50_ms']:.0f} | "
                f"{p['p95_ms']:.0f} | {p['p99_ms']:.0f} | {r['samples']} records, "
                f"train {r['train_s']:.1f} s |"
            )
        else:
            phases = ""
            if r["part"] == "batch":
                cpu_phases = r.get("cpu_phases_s", {})
                phases = ", ".join(
                    f"{label} {r[key]:.0f} s ({cpu_phases.get(name, float('nan')):.0f} CPU-s)"
                    for label, key, name in (
                        ("standardize", "standardize_s", "standardize"),
                        ("train", "train_s", "train"),
                        ("dedupe", "dedupe_s", "match"),
                    )
                )
                phases += ", "
            # ru_maxrss of the children is useless here: it counts the parent's pages each
            # worker held between fork and exec. The tree is sampled instead.
            workers = (
                f"; with the standardizing workers {r['peak_rss_tree_mb']:,.0f} MB"
                if r.get("peak_rss_tree_mb")
                else ""
            )
            cpu = f", {r['cpu_s']:.0f} CPU-s" if "cpu_s" in r else ""
            print(
                f"| {r['part']} | {r['records']:,} | | | | total {r['total_s']:.0f} s{cpu} "
                f"({phases}after generating the data), peak RSS {r['peak_rss_mb']:,.0f} MB "
                f"(data alone {r['rss_before_mb']:,.0f} MB{workers}), pairwise P/R/F1 "
                f"{r['precision']:.4f}/{r['recall']:.4f}/{r['f1']:.4f} |"
            )
    incremental = {
        r["store"]: r for r in results if r["part"] == "incremental" and "error" not in r
    }
    splink = [r for r in results if r["part"] == "splink" and "error" not in r]
    for r in splink:
        ours = incremental.get(r["store"])
        if ours:
            ratio = r["predict_between"]["p50_ms"] / ours["end_to_end"]["p50_ms"]
            print(f"\nSplink/mdh p50 per record against {r['store']:,}: {ratio:,.0f}x")
    batches = {r["part"]: r for r in results if r["part"] in ("batch", "splink-batch")}
    if {"batch", "splink-batch"} <= set(batches) and "error" not in batches["splink-batch"]:
        ours, theirs = batches["batch"], batches["splink-batch"]
        print(
            f"batch mdh/Splink: time {ours['total_s'] / theirs['total_s']:.2f}, "
            f"peak RSS {ours['peak_rss_mb'] / theirs['peak_rss_mb']:.2f}, "
            f"F1 {ours['f1'] / theirs['f1']:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="mdh incremental and batch matching speed")
    parser.add_argument("--part", choices=list(PARTS))
    parser.add_argument("--size", type=int, help="store size or record count for --part")
    parser.add_argument("--json", action="store_true", help="print the part's result as JSON")
    parser.add_argument("--quick", action="store_true", help="100k store and 100k batch only")
    parser.add_argument(
        "--with-splink-batch", action="store_true", help="also dedupe the 1M records with Splink"
    )
    args = parser.parse_args()
    if args.part:
        result = PARTS[args.part](args.size)
        print(json.dumps(result) if args.json else json.dumps(result, indent=2))
        return
    if args.quick:
        plan = [("incremental", 100_000), ("splink", 100_000), ("batch", 100_000)]
    else:
        plan = [
            ("incremental", 100_000),
            ("incremental", 1_000_000),
            ("splink", 100_000),
            ("batch", 1_000_000),
        ]
        if args.with_splink_batch:
            plan.append(("splink-batch", 1_000_000))
    results = [_child(part, size) for part, size in plan]
    _report(results)


if __name__ == "__main__":
    main()
