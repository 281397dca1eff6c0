"""The schema: init.sql on a fresh PostgreSQL database equals the models; creation is idempotent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg2
from sqlalchemy import inspect, select, text

from codecshift import registry
from codecshift.db import init_schema, make_engine, session_scope
from codecshift.initsql import APP_ROLE, render_init_sql
from codecshift.models import Base, WorkerSetting
from support.services import fresh_postgres_database

ROOT = Path(__file__).resolve().parent.parent
INIT_SQL = ROOT / "init.sql"


def _apply_init_sql(url: str) -> None:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(INIT_SQL.read_text(encoding="utf-8"))
    conn.close()


def _describe(url: str) -> dict:
    """Tables, columns (type, nullability), indexes, unique constraints and foreign keys."""
    engine = make_engine(url)
    inspector = inspect(engine)
    result = {}
    for table in sorted(inspector.get_table_names()):
        columns = {c["name"]: (str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)}
        indexes = {ix["name"]: (tuple(ix["column_names"]), ix["unique"],
                                str(ix.get("dialect_options", {}).get("postgresql_where") or ""))
                   for ix in inspector.get_indexes(table)}
        uniques = sorted(tuple(uc["column_names"]) for uc in inspector.get_unique_constraints(table))
        fks = sorted((tuple(fk["constrained_columns"]), fk["referred_table"], fk["options"].get("ondelete"))
                     for fk in inspector.get_foreign_keys(table))
        pk = tuple(inspector.get_pk_constraint(table)["constrained_columns"])
        result[table] = {"columns": columns, "indexes": indexes, "uniques": uniques, "fks": fks, "pk": pk}
    engine.dispose()
    return result


def _settings(url: str) -> dict[str, str]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT key, value FROM worker_settings")).all())
    engine.dispose()
    return rows


def test_committed_init_sql_is_generated_from_the_models() -> None:
    assert INIT_SQL.read_text(encoding="utf-8") == render_init_sql(), \
        "init.sql is stale: run `codecshift db sql --init > init.sql`"


def test_init_sql_matches_the_models_on_fresh_postgres() -> None:
    with fresh_postgres_database() as from_sql, fresh_postgres_database() as from_models:
        _apply_init_sql(from_sql)
        engine = make_engine(from_models)
        Base.metadata.create_all(engine)
        engine.dispose()
        applied, expected = _describe(from_sql), _describe(from_models)
        assert set(applied) == set(Base.metadata.tables)
        for name, table in Base.metadata.tables.items():
            assert set(applied[name]["columns"]) == {c.name for c in table.columns}, name
            for column in table.columns:
                assert applied[name]["columns"][column.name][1] == column.nullable, (name, column.name)
            assert {ix.name for ix in table.indexes} <= set(applied[name]["indexes"]), name
        assert applied == expected


def test_init_sql_inserts_every_default_setting() -> None:
    with fresh_postgres_database() as url:
        _apply_init_sql(url)
        assert _settings(url) == {key: registry.encode(s.default) for key, s in registry.REGISTRY.items()}


def test_init_sql_twice_changes_nothing() -> None:
    with fresh_postgres_database() as url:
        _apply_init_sql(url)
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("UPDATE worker_settings SET value = '25' WHERE key = 'min_saving_percent'"))
        engine.dispose()
        before = (_describe(url), _settings(url))
        _apply_init_sql(url)
        assert (_describe(url), _settings(url)) == before
        assert before[1]["min_saving_percent"] == "25"


def test_init_sql_creates_the_role_and_grants_every_table_and_sequence() -> None:
    with fresh_postgres_database() as url:
        _apply_init_sql(url)
        engine = make_engine(url)
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM pg_roles WHERE rolname = :r"), {"r": APP_ROLE}) == 1
            for table in Base.metadata.tables:
                for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE"):
                    assert conn.scalar(text("SELECT has_table_privilege(:r, :t, :p)"),
                                       {"r": APP_ROLE, "t": table, "p": privilege}), (table, privilege)
            sequences = conn.scalars(text(
                "SELECT sequence_name FROM information_schema.sequences WHERE sequence_schema = 'public'"
            )).all()
            assert sequences
            for sequence in sequences:
                assert conn.scalar(text("SELECT has_sequence_privilege(:r, :s, 'USAGE')"),
                                   {"r": APP_ROLE, "s": sequence}), sequence
        engine.dispose()


def test_init_schema_on_sqlite_is_idempotent(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x' / 'cs.db'}")
    assert set(init_schema(engine)) == set(registry.REGISTRY)
    assert init_schema(engine) == []
    assert set(inspect(engine).get_table_names()) == set(Base.metadata.tables)
    with session_scope(engine) as session:
        assert len(session.scalars(select(WorkerSetting.key)).all()) == len(registry.REGISTRY)
    indexes = {ix["name"] for ix in inspect(engine).get_indexes("jobs")}
    assert {"ix_jobs_status_queue", "uq_jobs_live_per_file"} <= indexes
    engine.dispose()


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "codecshift.cli.main", *args],
                          env={"PATH": "/usr/bin:/bin", **env},
                          capture_output=True, text=True, check=False)


def test_cli_db_init_on_sqlite_and_postgres(tmp_path: Path) -> None:
    result = _cli("db", "init", env={"CODECSHIFT_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "ready" in result.stdout and (tmp_path / "codecshift.db").is_file()
    assert _cli("db", "init", env={"CODECSHIFT_DATA_DIR": str(tmp_path)}).returncode == 0
    with fresh_postgres_database() as url:
        env = {"CODECSHIFT_DATA_DIR": str(tmp_path), "CODECSHIFT_DATABASE_URL": url}
        first = _cli("db", "init", env=env)
        assert first.returncode == 0, first.stderr
        assert f"{len(registry.REGISTRY)} defaults added" in first.stdout
        second = _cli("db", "init", env=env)
        assert "0 defaults added" in second.stdout
        assert set(_settings(url)) == set(registry.REGISTRY)


def test_cli_db_init_unreachable_database_is_one_line(tmp_path: Path) -> None:
    result = _cli("db", "init", env={"CODECSHIFT_DATABASE_URL": "postgresql://nobody:pw@127.0.0.1:1/x"})
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "cannot reach the database" in result.stderr and "pw" not in result.stderr


def test_cli_db_sql_prints_the_ddl() -> None:
    result = _cli("db", "sql", env={})
    assert result.returncode == 0
    for table in Base.metadata.tables:
        assert f"CREATE TABLE IF NOT EXISTS {table} " in result.stdout
    sqlite = _cli("db", "sql", "--dialect", "sqlite", env={})
    assert "CREATE TABLE IF NOT EXISTS jobs" in sqlite.stdout
