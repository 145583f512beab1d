"""Fixtures of the protocol tests: the JSON examples under ``data/`` (reusable by other tests)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"


def load_example(name: str) -> Any:
    """The parsed JSON of ``tests/protocol/data/<name>.json``."""
    return json.loads((DATA / f"{name}.json").read_text())


@pytest.fixture
def example() -> Callable[[str], Any]:
    return load_example
