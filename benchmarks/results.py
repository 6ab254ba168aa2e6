"""What a run found, per system and workload, and its JSON form (``latest.json``)."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Status = Literal["ok", "n/a", "error"]


@dataclass
class Outcome:
    """Every repetition of one workload on one system."""

    not_applicable: str | None = None
    """Why the whole workload is not measured on this system."""
    skipped_steps: dict[str, str] = field(default_factory=dict)
    """Steps not measured on this system (a part of the workload), with why."""
    repetitions: list[dict[str, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def status(self) -> Status:
        if self.errors:
            return "error"
        if self.not_applicable is not None:
            return "n/a"
        return "ok"

    def median(self) -> dict[str, float]:
        """The median of each measurement over the repetitions that have it."""
        keys = sorted({key for repetition in self.repetitions for key in repetition})
        return {
            key: statistics.median(rep[key] for rep in self.repetitions if key in rep)
            for key in keys
        }

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {"status": self.status}
        if self.not_applicable is not None:
            record["reason"] = self.not_applicable
        if self.skipped_steps:
            record["not_applicable_steps"] = self.skipped_steps
        if self.errors:
            record["errors"] = self.errors
        if self.repetitions:
            record["repetitions"] = self.repetitions
            record["median"] = self.median()
        return record


def write_json(document: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
