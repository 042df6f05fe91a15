"""The ``offload`` command.

Each subcommand lives in its own module in this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with
the parsed args, returning the exit status). Modules are found at start-up, so
adding a subcommand touches no other file; no kernel is compiled for a
subcommand that is not run.

Exit status (every subcommand):

* 0 — done, nothing wrong found;
* 1 — done, and the input had problems the command reports (bad checksums,
  refused frames);
* 2 — usage error;
* 3 — the input file is unreadable or corrupt (what was read before the damage
  was still processed and written, and the byte offset is named).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="offload",
        description="Software packet offloads: segment (GSO), coalesce (GRO) and checksum capture files.",
        epilog="Exit status: 0 ok, 1 problems found in the input, 2 usage error, 3 unreadable or corrupt input.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
        importlib.import_module(f"{__name__}.{mod}").register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
