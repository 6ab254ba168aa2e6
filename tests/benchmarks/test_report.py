"""The report's tables, from a made-up ``latest.json``: one per store, limits and ratios."""

from __future__ import annotations

from typing import Any

from benchmarks import report

# (name, role, store, enqueue_single jobs/s)
_SYSTEMS = (
    ("raw_sqlite", "limit", "sqlite", 40_000.0),
    ("raw_trio", "limit", "none", None),
    ("huey", "peer", "sqlite", 20_000.0),
    ("callboard", "subject", "sqlite", 10_000.0),
    ("raw_psycopg", "limit", "postgresql", 2_000.0),
    ("procrastinate", "peer", "postgresql", 500.0),
    ("pgqueuer", "peer", "postgresql", 1_000.0),
    ("callboard_pg", "subject", "postgresql", 800.0),
)


def _document() -> dict[str, Any]:
    def outcome(value: float | None) -> dict[str, Any]:
        if value is None:
            return {"status": "n/a", "reason": "no store"}
        return {"status": "ok", "median": {"enqueue.jobs_per_s": value}}

    return {
        "machine": {
            "date": "2026-01-01T00:00:00+00:00",
            "cpu_count": 2,
            "cpu_model": "test",
            "memory_total": "1 GiB",
            "platform": "test",
            "python": "3.11",
        },
        "run": {"scale": 1, "repeat": 1},
        "workloads": {"enqueue_single": {"summary": "", "params": {}}},
        "systems": {
            name: {"role": role, "store": store, "summary": "", "versions": {}}
            for name, role, store, _ in _SYSTEMS
        },
        "results": {name: {"enqueue_single": outcome(value)} for name, _, _, value in _SYSTEMS},
    }


def _table(markdown: str, title: str) -> list[str]:
    lines = markdown.split(f"### {title}\n\n", 1)[1].splitlines()
    return [line for line in lines[: lines.index("")]]


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_sqlite_table_keeps_its_columns_and_bars() -> None:
    header, _, row, *_ = _table(report.render(_document()), "SQLite")
    assert _cells(header) == [
        "workload",
        "metric",
        "raw_sqlite",
        "raw_trio",
        "huey",
        "callboard",
        "limit",
        "callboard / huey",
        "callboard / limit",
        "bar (issues 3, 22)",
    ]
    assert _cells(row)[-1] == ">= 0.7x huey: FAIL (0.50x)"


def test_postgresql_table_has_its_limit_its_peers_and_no_bars() -> None:
    header, _, row, *_ = _table(report.render(_document()), "PostgreSQL")
    assert _cells(header) == [
        "workload",
        "metric",
        "raw_psycopg",
        "raw_trio",
        "procrastinate",
        "pgqueuer",
        "callboard_pg",
        "limit",
        "callboard_pg / procrastinate",
        "callboard_pg / pgqueuer",
        "callboard_pg / limit",
    ]
    assert _cells(row)[2:] == [
        "2,000",
        "n/a",
        "500",
        "1,000",
        "800",
        "2,000 (raw_psycopg)",
        "1.60x",
        "0.80x",
        "0.40x",
    ]


def test_drain_limit_is_named_per_store() -> None:
    text = report.render(_document())
    assert "1 / (1/raw_sqlite + 1/raw_trio) on SQLite" in text
    assert "1 / (1/raw_psycopg + 1/raw_trio) on PostgreSQL" in text


def test_floor_gets_a_column_a_ratio_and_its_bar() -> None:
    document = _document()
    floor = {"role": "floor", "store": "sqlite", "summary": "", "versions": {}}
    document["systems"]["floor"] = floor
    cpu = {"floor": 40.0, "callboard": 80.0, "huey": 30.0}
    document["results"]["floor"] = {"enqueue_single": {"status": "ok", "median": {}}}
    for name, value in cpu.items():
        median = document["results"][name]["enqueue_single"].setdefault("median", {})
        median["enqueue.cpu_us_per_job"] = value
    header, _, _, cpu_row = _table(report.render(document), "SQLite")
    cells = dict(zip(_cells(header), _cells(cpu_row), strict=True))
    assert cells["floor"] == "40"
    assert cells["callboard / floor"] == "2.00x"
    assert cells["bar (issues 3, 22)"] == "<= 1.6x floor: FAIL (2.00x)"
