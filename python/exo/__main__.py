"""``python -m exo``: the same as the ``exo`` command (see ``exo.cli``)."""

from exo.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
