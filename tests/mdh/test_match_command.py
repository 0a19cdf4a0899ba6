"""`mdh match` on small files written per test: clusters, pairs, metrics and bad input."""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from mdh.cli import app

runner = CliRunner()

COLUMNS = ["cust_id", "first", "last", "birth", "mail", "zip", "entity"]
PERSON_MAP = [
    "--map",
    "given_name=first",
    "--map",
    "family_name=last",
    "--map",
    "dob=birth",
    "--map",
    "email=mail",
    "--map",
    "postcode=zip",
    "--id",
    "cust_id",
]
_GIVEN = [
    "Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver", "Sophia", "Elijah", "Isabella",
    "Lucas", "Mia", "Mateo", "Charlotte", "Levi", "Harper", "Ezra", "Evelyn", "Asher", "Luna",
    "Leo", "Camila", "James", "Gianna", "Henry", "Aria", "Theo", "Ella", "Jack", "Nora", "Owen",
]  # fmt: skip
_FAMILY = [
    "Okafor", "Lindqvist", "Moreau", "Tanaka", "Kowalski", "Fitzgerald", "Nakamura", "Oyelaran",
    "Vasquez", "Haddad", "Brennan", "Schulte", "Marchetti", "Abernathy", "Castellano", "Dubois",
    "Ferreira", "Gallagher", "Horvath", "Ivanova", "Jankowski", "Kristensen", "Lombardi",
    "Mahoney", "Novak", "Ostrowski", "Petrov", "Quintero", "Rasmussen", "Sorensen",
]  # fmt: skip


def _people(n: int, seed: int = 7) -> list[dict[str, str]]:
    rng = random.Random(seed)
    people = []
    for i in range(n):
        given, family = _GIVEN[i % len(_GIVEN)], _FAMILY[(i * 7) % len(_FAMILY)]
        people.append(
            {
                "first": given,
                "last": family,
                "birth": f"{rng.randint(1940, 2000)}-{rng.randint(1, 12):02d}-"
                f"{rng.randint(1, 28):02d}",
                "mail": f"{given}.{family}{i}@example.com".lower(),
                "zip": f"{rng.randint(10000, 99999)}",
                "entity": f"e{i}",
            }
        )
    return people


def _typo(value: str) -> str:
    return value[:-2] + value[-1] + value[-2] if len(value) > 3 else value


def _duplicate(person: dict[str, str]) -> dict[str, str]:
    twin = dict(person)
    twin["first"] = twin["first"].upper()
    twin["last"] = _typo(twin["last"])
    return twin


def _write_csv(path: Path, rows: Sequence[dict[str, str]], columns: Sequence[str]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _dedupe_file(tmp_path: Path) -> Path:
    people = _people(60)
    rows = [*people, *(_duplicate(p) for p in people[:15])]
    for number, row in enumerate(rows, start=1):
        row["cust_id"] = f"c{number:03d}"
    return _write_csv(tmp_path / "customers.csv", rows, COLUMNS)


def _read_clusters(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


_BOX = str.maketrans(dict.fromkeys("│┃┌┐└┘─━┬┴├┤┼┏┓┗┛┡┩╇", " "))


def _flat(text: str) -> str:
    """Output on one line, without rich's table borders."""
    return " ".join(text.translate(_BOX).split())


# --- what a user gets -------------------------------------------------------------------------


def test_dedupe_puts_each_duplicate_with_its_original(tmp_path: Path) -> None:
    source = _dedupe_file(tmp_path)
    out = tmp_path / "clusters.csv"
    result = runner.invoke(app, ["match", str(source), *PERSON_MAP, "--out", str(out)])
    assert result.exit_code == 0, result.output
    clusters = _read_clusters(out)
    assert len(clusters) == 75
    assert set(clusters[0]) == {"source", "record_id", "cluster_id"}
    by_id = {row["record_id"]: row["cluster_id"] for row in clusters}
    for k in range(15):  # record c0NN (original) and c0(60+NN) (its duplicate)
        assert by_id[f"c{k + 1:03d}"] == by_id[f"c{k + 61:03d}"]
    assert len(set(by_id.values())) == 60
    output = _flat(result.output)
    assert "duplicate records 15" in output
    assert "duplicate rate 20.00%" in output


def test_truth_column_prints_pairwise_and_bcubed_scores(tmp_path: Path) -> None:
    source = _dedupe_file(tmp_path)
    result = runner.invoke(
        app,
        ["match", str(source), *PERSON_MAP, "--truth", "entity", "-o", str(tmp_path / "c.csv")],
    )
    assert result.exit_code == 0, result.output
    output = _flat(result.output)
    assert "pairwise 1.0000 1.0000 1.0000" in output
    assert "B-cubed 1.0000 1.0000 1.0000" in output
    assert "true pairs 15" in output


def test_pairs_file_holds_explained_scores(tmp_path: Path) -> None:
    source = _dedupe_file(tmp_path)
    pairs = tmp_path / "pairs.jsonl"
    result = runner.invoke(
        app,
        ["match", str(source), *PERSON_MAP, "--pairs", str(pairs), "-o", str(tmp_path / "c.csv")],
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in pairs.read_text(encoding="utf-8").splitlines()]
    matches = [line for line in lines if line["decision"] == "match"]
    assert len(matches) == 15
    first = matches[0]
    assert {first["left"]["record_id"], first["right"]["record_id"]} <= {
        f"c{k:03d}" for k in range(1, 76)
    }
    assert first["probability"] >= 0.5
    assert first["explanation"]
    assert first["waterfall"]


def test_link_mode_links_across_files_and_saves_a_reusable_model(tmp_path: Path) -> None:
    people = _people(60, seed=11)
    left_rows = [dict(p, cust_id=f"a{i}") for i, p in enumerate(people)]
    right_rows = [dict(_duplicate(p), cust_id=f"b{i}") for i, p in enumerate(people[:20])]
    left = _write_csv(tmp_path / "crm.csv", left_rows, COLUMNS)
    right = _write_csv(tmp_path / "erp.csv", right_rows, COLUMNS)
    out = tmp_path / "links.csv"
    model = tmp_path / "model.json"
    args = ["match", str(left), str(right), "--link", *PERSON_MAP, "--truth", "entity"]
    result = runner.invoke(app, [*args, "-o", str(out), "--save-model", str(model)])
    assert result.exit_code == 0, result.output
    clusters = _read_clusters(out)
    assert {row["source"] for row in clusters} == {"crm.csv", "erp.csv"}
    cluster_of = {(row["source"], row["record_id"]): row["cluster_id"] for row in clusters}
    assert all(
        cluster_of[("crm.csv", f"a{i}")] == cluster_of[("erp.csv", f"b{i}")] for i in range(20)
    )
    assert "linked records in erp.csv 20" in _flat(result.output)

    again = runner.invoke(app, [*args, "-o", str(tmp_path / "again.csv"), "--model", str(model)])
    assert again.exit_code == 0, again.output
    assert _read_clusters(tmp_path / "again.csv") == clusters


def test_config_file_maps_columns_per_file_and_reads_parquet(tmp_path: Path) -> None:
    people = _people(40, seed=3)
    crm = _write_csv(
        tmp_path / "crm.csv", [dict(p, cust_id=f"a{i}") for i, p in enumerate(people)], COLUMNS
    )
    billing_rows = [_duplicate(p) for p in people[:10]]
    pq.write_table(
        pa.table(
            {
                "account": [f"b{i}" for i in range(10)],
                "given": [r["first"] for r in billing_rows],
                "surname": [r["last"] for r in billing_rows],
                "born": [r["birth"] for r in billing_rows],
                "email_address": [r["mail"] for r in billing_rows],
                "postal": [r["zip"] for r in billing_rows],
            }
        ),
        tmp_path / "billing.parquet",
    )
    config = tmp_path / "mapping.yaml"
    config.write_text(
        "id: cust_id\n"
        "columns: {given_name: first, family_name: last, dob: birth, email: mail, postcode: zip}\n"
        "files:\n"
        "  billing.parquet:\n"
        "    id: account\n"
        "    columns: {given_name: given, family_name: surname, dob: born,"
        " email: email_address, postcode: postal}\n",
        encoding="utf-8",
    )
    out = tmp_path / "clusters.csv"
    result = runner.invoke(
        app,
        ["match", str(crm), str(tmp_path / "billing.parquet"), "-c", str(config), "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    cluster_of = {(r["source"], r["record_id"]): r["cluster_id"] for r in _read_clusters(out)}
    assert cluster_of[("crm.csv", "a3")] == cluster_of[("billing.parquet", "b3")]
    assert cluster_of[("crm.csv", "a3")] != cluster_of[("crm.csv", "a4")]


# --- bad input: exit code 2, a message naming the file, the column and what was expected ------


def _bad(tmp_path: Path, *args: str) -> str:
    result = runner.invoke(app, ["match", *args, "-o", str(tmp_path / "never.csv")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "never.csv").exists()
    return _flat(result.output)


def test_a_missing_mapped_column_is_named(tmp_path: Path) -> None:
    source = _dedupe_file(tmp_path)
    message = _bad(tmp_path, str(source), *PERSON_MAP, "--map", "phone=telephone")
    assert "customers.csv" in message
    assert "'telephone'" in message
    assert "not found" in message
    assert "cust_id" in message  # the columns the file does have


def test_a_broken_encoding_names_the_line_and_column(tmp_path: Path) -> None:
    source = tmp_path / "latin1.csv"
    source.write_bytes(
        b"cust_id,first,last,birth,mail,zip\n"
        b"1,Ann,Smith,1980-01-02,ann@example.com,12345\n"
        b"2,Ren\xe9e,Dupont,1975-03-04,renee@example.com,54321\n"
    )
    message = _bad(tmp_path, str(source), *PERSON_MAP)
    assert "latin1.csv" in message
    assert "'first'" in message
    assert "line 3" in message
    assert "utf-8" in message
    assert "--encoding" in message


def test_the_right_encoding_flag_reads_the_same_file(tmp_path: Path) -> None:
    rows = [dict(p, cust_id=str(i)) for i, p in enumerate(_people(30))]
    rows[1]["first"] = "Renée"
    source = tmp_path / "latin1.csv"
    with source.open("w", encoding="latin-1", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    result = runner.invoke(
        app,
        ["match", str(source), *PERSON_MAP, "--encoding", "latin-1", "-o", str(tmp_path / "c.csv")],
    )
    assert result.exit_code == 0, result.output


def test_dates_of_birth_that_are_not_dates_are_refused(tmp_path: Path) -> None:
    rows = [
        dict(p, cust_id=str(i), birth="n/a" if i % 3 else p["birth"])
        for i, p in enumerate(_people(30))
    ]
    source = _write_csv(tmp_path / "people.csv", rows, COLUMNS)
    message = _bad(tmp_path, str(source), *PERSON_MAP)
    assert "people.csv" in message
    assert "'birth'" in message
    assert "date of birth" in message
    assert "'n/a'" in message


def test_a_parquet_column_of_the_wrong_type_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "nested.parquet"
    pq.write_table(
        pa.table({"id": ["1", "2"], "last": [["Smith"], ["Jones"]], "first": ["Ann", "Bob"]}),
        source,
    )
    message = _bad(
        tmp_path,
        str(source),
        "--map",
        "family_name=last",
        "--map",
        "given_name=first",
        "--id",
        "id",
    )
    assert "nested.parquet" in message
    assert "'last'" in message
    assert "expected text" in message


@pytest.mark.parametrize(
    ("content", "extra", "expected"),
    [
        pytest.param(b"", ["--map", "given_name=first"], "empty", id="empty-file"),
        pytest.param(
            b"cust_id,first,last\n1,Ann,Smith\n1,Bob,Jones\n",
            ["--map", "given_name=first", "--id", "cust_id"],
            "appears twice",
            id="duplicate-ids",
        ),
        pytest.param(
            b"cust_id,first\n1,Ann\n",
            ["--map", "given_nam=first"],
            "unknown canonical field",
            id="unknown-field",
        ),
        pytest.param(
            b"cust_id,first\n1,Ann\n",
            ["--map", "given_name"],
            "expected canonical=column",
            id="malformed-map",
        ),
        pytest.param(b"cust_id,first\n1,Ann\n", [], "no columns are mapped", id="no-mapping"),
        pytest.param(
            b"cust_id,first\n1,Ann\n",
            ["--map", "given_name=first", "--truth", "label"],
            "'label'",
            id="missing-truth-column",
        ),
    ],
)
def test_other_bad_input_exits_with_code_2(
    tmp_path: Path, content: bytes, extra: list[str], expected: str
) -> None:
    source = tmp_path / "input.csv"
    source.write_bytes(content)
    message = _bad(tmp_path, str(source), *extra)
    assert expected in message


def test_link_mode_needs_two_files(tmp_path: Path) -> None:
    source = _dedupe_file(tmp_path)
    assert "--link needs at least two input files" in _bad(
        tmp_path, str(source), "--link", *PERSON_MAP
    )


def test_a_broken_config_file_is_named(tmp_path: Path) -> None:
    source = _dedupe_file(tmp_path)
    config = tmp_path / "mapping.yaml"
    config.write_text("columns: [given_name, first]\n", encoding="utf-8")
    message = _bad(tmp_path, str(source), "--config", str(config))
    assert "mapping.yaml" in message
    assert "'columns' must map canonical fields to column names" in message


def test_an_output_in_a_missing_directory_is_refused_before_matching(tmp_path: Path) -> None:
    source = _dedupe_file(tmp_path)
    result = runner.invoke(
        app, ["match", str(source), *PERSON_MAP, "--pairs", str(tmp_path / "no" / "p.jsonl")]
    )
    assert result.exit_code == 2, result.output
    assert "--pairs" in _flat(result.output)
    assert "existing directory" in _flat(result.output)


def test_an_unknown_spec_is_refused(tmp_path: Path) -> None:
    source = _dedupe_file(tmp_path)
    message = _bad(tmp_path, str(source), *PERSON_MAP, "--spec", "no-such-spec")
    assert "no-such-spec" in message


def test_standardizing_in_worker_processes_gives_the_serial_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mdh import file_matching

    mapping = file_matching.FileMapping(
        columns={"given_name": "first", "family_name": "last", "dob": "birth", "email": "mail"},
        id_column="cust_id",
    )
    source = file_matching.read_input(_dedupe_file(tmp_path), mapping)
    serial, _ = file_matching.standardize_files([source, source], "US", None)
    monkeypatch.setattr(file_matching, "_PARALLEL_FROM", 10)
    monkeypatch.setattr(file_matching, "_CHUNK_ROWS", 7)
    parallel, _ = file_matching.standardize_files([source, source], "US", None)
    assert parallel == serial
    assert len(parallel) == 150


def test_train_sample_trains_on_that_many_records_and_still_matches_every_record(
    tmp_path: Path,
) -> None:
    source = _dedupe_file(tmp_path)
    out, model = tmp_path / "clusters.csv", tmp_path / "model.json"
    args = ["match", str(source), *PERSON_MAP, "-o", str(out), "--save-model", str(model)]
    result = runner.invoke(app, [*args, "--train-sample", "50", "--seed", "3"])
    assert result.exit_code == 0, result.output
    training = json.loads(model.read_text(encoding="utf-8"))["training"]
    assert (training["records"], training["population"]) == (50, 75)
    assert len(_read_clusters(out)) == 75

    again = runner.invoke(app, [*args, "--train-sample", "50", "--seed", "3"])
    assert again.exit_code == 0, again.output
    assert json.loads(model.read_text(encoding="utf-8"))["training"] == training

    whole = runner.invoke(app, [*args, "--train-sample", "0"])
    assert whole.exit_code == 0, whole.output
    assert json.loads(model.read_text(encoding="utf-8"))["training"]["records"] == 75


def test_a_training_sample_of_one_record_is_refused(tmp_path: Path) -> None:
    source = _dedupe_file(tmp_path)
    message = _bad(tmp_path, str(source), *PERSON_MAP, "--train-sample", "1")
    assert "--train-sample" in message
