"""``python -m convext.bench``: the same as ``python -m convext bench``."""

from __future__ import annotations

from convext.bench.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
