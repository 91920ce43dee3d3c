"""Fixtures for the test suite; helpers live in helpers.py."""

from __future__ import annotations

import pytest
from helpers import Errors, Recorder


@pytest.fixture
def errors() -> Errors:
    return Errors()


@pytest.fixture(autouse=True)
def _reset_recorders() -> None:
    Recorder.instances.clear()
