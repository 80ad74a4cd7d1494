"""Command line entry point: ``python -m convext {demo,bench,config}``."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m convext", description=__doc__)
    parser.add_argument("command", choices=["demo", "bench", "config"], help="what to run")
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    args, rest = parser.parse_known_args(argv[:1])
    rest = argv[1:]
    if args.command == "demo":
        from convext.demo import main as demo_main

        return int(demo_main(rest) or 0)
    if args.command == "bench":
        from convext.bench import main as bench_main

        return int(bench_main(rest) or 0)
    import convext

    convext.show_config()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
