"""pytest hooks and fixtures for the benches; the helpers live in benchkit.py."""

from benchkit import *  # noqa: F403 - hooks and fixtures must be visible here
from benchkit import pytest_terminal_summary  # noqa: F401
