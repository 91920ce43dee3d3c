"""pytest hooks and fixtures for the benches: they live in benchkit.py, loaded
as a plugin."""

pytest_plugins = ["benchkit"]
