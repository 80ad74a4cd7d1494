"""Command line entry point: ``python -m convext {demo,bench,config} [options]``."""
from __future__ import annotations

import argparse
import sys

# One line each for ``python -m convext --help``; ``<command> --help`` has the options.
COMMANDS = {
    "demo": "train a small CNN of convext.nn layers on scikit-learn's digits and plot it (needs the demo extra)",
    "bench": "time convext against PyTorch, numpy, scipy and ONNX Runtime: the layer suite, "
    "--zoo layers, --models",
    "config": "print the build: version, kernels and ISA chosen, OpenMP, threads",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m convext",
        description="convext's commands. Run `python -m convext COMMAND --help` for a command's options.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, line in COMMANDS.items():
        # add_help=False: "--help" after a command goes to that command's own parser
        commands.add_parser(name, help=line, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a subcommand.

    Parameters
    ----------
    argv : list of str or None
        Arguments after ``python -m convext`` (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The command's exit status; 0 for ``--help``, 2 without a command.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        parser.error(f"unknown command {argv[0]!r} (choose from {', '.join(COMMANDS)})")
    command, rest = argv[0], argv[1:]
    if command == "demo":
        from convext.demo import main as demo_main

        return int(demo_main(rest) or 0)
    if command == "bench":
        from convext.bench import main as bench_main

        return int(bench_main(rest) or 0)
    if rest and rest[0] in ("-h", "--help"):
        print(f"usage: python -m convext config\n\n{COMMANDS['config']}.")
        return 0
    import convext

    convext.show_config()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
