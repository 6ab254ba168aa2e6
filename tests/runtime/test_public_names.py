"""``runtime.__all__`` is the public API, and docs/python-api.md lists exactly it."""

from __future__ import annotations

import re
from pathlib import Path

import runtime
import runtime.client
from tests.sorting import isort_key

PAGE = Path(__file__).parents[2] / "docs" / "python-api.md"


CLIENT_SECTION = "## The HTTP client: `runtime.client`"


def documented_names(text: str) -> list[str]:
    """The first column of the tables in ``text``, in their order."""
    return re.findall(r"^\| `(\w+)` \|", text, flags=re.MULTILINE)


def test_the_docs_list_exactly_the_public_names_in_their_order() -> None:
    page, _, client = PAGE.read_text().partition(CLIENT_SECTION)
    assert documented_names(page) == runtime.__all__
    # The client's section: its method table (whose first column is a call), then its names.
    assert documented_names(client) == runtime.client.__all__


def test_the_clients_names_are_sorted_without_repeats() -> None:
    assert runtime.client.__all__ == sorted(set(runtime.client.__all__), key=isort_key)


def test_all_is_sorted_without_repeats() -> None:
    assert runtime.__all__ == sorted(set(runtime.__all__), key=isort_key)


def test_every_name_of_the_init_is_in_all() -> None:
    public = {
        name
        for name, value in vars(runtime).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("runtime")
    }
    assert public - set(runtime.__all__) == set()
