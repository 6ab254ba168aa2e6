"""Virtualenvs for peers, installed from PyPI by the runner and never vendored."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

VENVS_ROOT = Path(__file__).resolve().parent / ".venvs"
"""Where peers' virtualenvs live (gitignored)."""

_MARKER = "benchmarks-requirements.txt"


class InstallFailed(Exception):
    """A peer's virtualenv could not be created or installed."""


@dataclass(frozen=True)
class Environment:
    """A virtualenv holding one peer, pinned so runs stay comparable."""

    name: str
    requirements: tuple[str, ...]

    def path(self, root: Path = VENVS_ROOT) -> Path:
        return root / self.name

    def python(self, root: Path = VENVS_ROOT) -> Path:
        return self.path(root) / "bin" / "python"

    def is_ready(self, root: Path = VENVS_ROOT) -> bool:
        # The marker is written last, so a half-finished install is not ready.
        marker = self.path(root) / _MARKER
        return (
            self.python(root).exists()
            and marker.exists()
            and marker.read_text() == self._marker_text()
        )

    def ensure(self, log: Callable[[str], None], root: Path = VENVS_ROOT) -> Path:
        """Create and install the virtualenv unless it is ready; return its python."""
        if self.is_ready(root):
            return self.python(root)
        log(f"installing {', '.join(self.requirements)} into {self.path(root)}")
        self._run([sys.executable, "-m", "venv", "--clear", str(self.path(root))])
        self._run([str(self.python(root)), "-m", "pip", "install", "--quiet", *self.requirements])
        (self.path(root) / _MARKER).write_text(self._marker_text())
        return self.python(root)

    def _marker_text(self) -> str:
        return "\n".join(self.requirements) + "\n"

    def _run(self, command: list[str]) -> None:
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise InstallFailed(
                f"{self.name}: {' '.join(command)} failed:\n{completed.stderr.strip()}"
            )
