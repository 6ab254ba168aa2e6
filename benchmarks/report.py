"""The markdown tables of ``docs/benchmarks.md``, rendered from ``latest.json``.

One table per store (SQLite, PostgreSQL) with that store's limit (raw_sqlite,
raw_psycopg), the engine's limit (raw_trio, which has no store, so both
tables show the same figures), the store's floor if it has one (Callboard's
own statements alone: ``floor`` on SQLite), the peers on that store and
Callboard on it. Every figure is a median; ratios divide Callboard's figure
by the other's. Only the SQLite table has a bar column: the bars of issues 3
and 22 are set on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from benchmarks.metrics import METRICS, Bar, Metric

BAR_STORE = "sqlite"
"""Issues 3 and 22 set their bars for Callboard on SQLite."""

_STORE_TITLES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}

Document = Mapping[str, Any]


def render(document: Document) -> str:
    lines = ["## Results", "", _provenance(document), ""]
    tables = [_Table.of(document, store) for store in _stores(document)]
    for table in tables:
        lines += [f"### {_title(table.store)}", "", *table.lines(), ""]
    lines += [
        "Ratios divide Callboard's median by the other's: for jobs/s higher is better,",
        "for everything else lower is better. The limit of `drain` is",
        f"{_drain_limits(tables)}: claiming and completing in the store, and",
        "spawning tasks, in series.",
        "",
        *_not_applicable_notes(document),
        *_error_notes(document),
    ]
    return "\n".join(lines).rstrip() + "\n"


def _title(store: str) -> str:
    return _STORE_TITLES.get(store, store)


def _drain_limits(tables: list[_Table]) -> str:
    """The combined drain limit of each table, named after its store's limit."""
    formulas = [
        (f"1 / (1/{table.store_limit or 'store limit'} + 1/{table.engine_limit or 'raw_trio'})")
        + (f" on {_title(table.store)}" if len(tables) > 1 else "")
        for table in tables
    ]
    return " and ".join(formulas)


def _provenance(document: Document) -> str:
    machine, run = document["machine"], document["run"]
    versions = sorted(
        {
            f"{name} {version}"
            for system in document["systems"].values()
            for name, version in system["versions"].items()
        }
    )
    return (
        f"Measured {machine['date']} on {machine['cpu_count']} CPUs ({machine['cpu_model']}, "
        f"{machine['memory_total']} memory), {machine['platform']}, Python {machine['python']}. "
        f"Scale {run['scale']:g}, median of {run['repeat']} repetition(s), every step in a "
        f"fresh process with a fresh store. Versions: {', '.join(versions) or 'unknown'}."
    )


def _stores(document: Document) -> list[str]:
    """The stores that get a table: the subjects' first, then any other system's."""
    systems = sorted(document["systems"].values(), key=lambda system: system["role"] != "subject")
    stores = [system["store"] for system in systems if system["store"] != "none"]
    return list(dict.fromkeys(stores)) or ["none"]


@dataclass(frozen=True)
class _Table:
    document: Document
    store: str
    store_limit: str | None
    engine_limit: str | None
    floors: tuple[str, ...]
    peers: tuple[str, ...]
    subjects: tuple[str, ...]

    @classmethod
    def of(cls, document: Document, store: str) -> _Table:
        def named(role: str, stores: tuple[str, ...]) -> tuple[str, ...]:
            systems = document["systems"].items()
            return tuple(n for n, s in systems if s["role"] == role and s["store"] in stores)

        store_limits, engine_limits = named("limit", (store,)), named("limit", ("none",))
        return cls(
            document=document,
            store=store,
            store_limit=store_limits[0] if store_limits else None,
            engine_limit=engine_limits[0] if engine_limits else None,
            floors=named("floor", (store,)),
            peers=named("peer", (store, "none")),
            subjects=named("subject", (store, "none")),
        )

    @property
    def shows_bars(self) -> bool:
        return self.store == BAR_STORE

    @property
    def systems(self) -> tuple[str, ...]:
        limits = (self.store_limit, self.engine_limit)
        return (*(name for name in limits if name), *self.floors, *self.peers, *self.subjects)

    def lines(self) -> list[str]:
        header = ["workload", "metric", *self.systems, "limit"]
        for subject in self.subjects:
            header += [f"{subject} / {other}" for other in (*self.floors, *self.peers)]
            header.append(f"{subject} / limit")
        if self.shows_bars:
            header.append("bar (issues 3, 22)")
        rows = [header, ["---"] * len(header)]
        rows += [self.row(m) for m in METRICS if m.workload in self.document["workloads"]]
        return ["| " + " | ".join(row) + " |" for row in rows]

    def row(self, metric: Metric) -> list[str]:
        limit = self.limit(metric)
        row = [metric.workload, f"{metric.label} ({metric.unit})" if metric.unit else metric.label]
        row += [self.cell(name, metric) for name in self.systems]
        row.append("n/a" if limit is None else f"{_figure(limit[0])} ({limit[1]})")
        for subject in self.subjects:
            mine = self.value(subject, metric)
            others = (*self.floors, *self.peers)
            row += [_ratio(mine, self.value(other, metric)) for other in others]
            row.append(_ratio(mine, None if limit is None else limit[0]))
        if self.shows_bars:
            row.append(self.bars(metric, limit))
        return row

    def value(self, system: str, metric: Metric) -> float | None:
        outcome = self.document["results"].get(system, {}).get(metric.workload, {})
        value = outcome.get("median", {}).get(metric.key)
        return None if value is None else float(value)

    def cell(self, system: str, metric: Metric) -> str:
        outcome = self.document["results"][system].get(metric.workload, {})
        value = self.value(system, metric)
        if value is not None:
            return _figure(value) + (" (!)" if outcome.get("errors") else "")
        return "error" if outcome.get("status") == "error" else "n/a"

    def limit(self, metric: Metric) -> tuple[float, str] | None:
        """The limit ``metric`` is held against, and which one it is."""
        if metric.limit == "combined":
            store = self._limit_value(self.store_limit, metric)
            engine = self._limit_value(self.engine_limit, metric)
            if store is None or engine is None:
                return None
            return 1 / (1 / store[0] + 1 / engine[0]), "combined"
        if metric.limit == "store":
            return self._limit_value(self.store_limit, metric)
        if metric.limit == "engine":
            return self._limit_value(self.engine_limit, metric)
        return None

    def _limit_value(self, system: str | None, metric: Metric) -> tuple[float, str] | None:
        value = None if system is None else self.value(system, metric)
        return None if value is None or system is None or value == 0 else (value, system)

    def bars(self, metric: Metric, limit: tuple[float, str] | None) -> str:
        if not metric.bars or not self.subjects:
            return ""
        mine = self.value(self.subjects[0], metric)
        return "; ".join(self.bar(bar, metric, mine, limit) for bar in metric.bars)

    def bar(
        self, bar: Bar, metric: Metric, mine: float | None, limit: tuple[float, str] | None
    ) -> str:
        if bar.against == "value":
            measured = mine
        else:
            other = self.value(bar.peer, metric) if bar.against == "peer" else None
            if bar.against == "floor" and self.floors:
                other = self.value(self.floors[0], metric)
            if bar.against == "limit":
                other = None if limit is None else limit[0]
            measured = None if mine is None or not other else mine / other
        if measured is None:
            return f"{bar.text}: n/a"
        shown = _figure(measured) if bar.against == "value" else f"{measured:.2f}x"
        return f"{bar.text}: {'pass' if bar.passes(measured) else 'FAIL'} ({shown})"


def _ratio(mine: float | None, other: float | None) -> str:
    return "n/a" if mine is None or not other else f"{mine / other:.2f}x"


def _figure(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _not_applicable_notes(document: Document) -> list[str]:
    notes = sorted(set(_reasons(document)))
    return ["Not measured (n/a):", "", *notes, ""] if notes else []


def _reasons(document: Document) -> Iterator[str]:
    for system, workloads in document["results"].items():
        for workload, outcome in workloads.items():
            if "reason" in outcome:
                yield f"- {system}, `{workload}`: {outcome['reason']}"
            for step, reason in outcome.get("not_applicable_steps", {}).items():
                yield f"- {system}, `{workload}` ({step}): {reason}"


def _error_notes(document: Document) -> list[str]:
    notes = [
        f"- {system}, `{workload}`: {error}"
        for system, workloads in document["results"].items()
        for workload, outcome in workloads.items()
        for error in outcome.get("errors", [])
    ]
    if not notes:
        return []
    return ["Errors (a figure marked (!) is the median of the passing repetitions):", "", *notes]
