"""The ``lingtan`` command line: a thin dispatcher.

Each distribution of the workspace registers its commands under the entry-point group
``lingtan.commands`` (its pyproject.toml); the entry point is a ``register(sub, nested)``
function that adds sub-commands to the parser. This module imports none of them by name, so
the core never depends on a service (docs/architecture.md).
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib.metadata import entry_points
from pathlib import Path

from lingtan.settings import Settings, load_settings

ENTRY_POINT_GROUP = "lingtan.commands"


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The settings, with ``--state-dir`` and ``--park`` (when given) over the environment."""
    overrides: dict[str, object] = {}
    if getattr(args, "state_dir", None):
        overrides["state_dir"] = Path(args.state_dir).absolute()
    if getattr(args, "park", None):
        overrides["park_file"] = Path(args.park)
    return load_settings(**overrides)


def load_park_or_exit(settings: Settings):
    """The park model of ``settings``; an invalid file ends the command with its error."""
    from lingtan.park import ParkModelError, load_park

    try:
        return load_park(settings.park_file)
    except ParkModelError as exc:
        raise SystemExit(str(exc)) from None


def emit(text: str, output: str | None) -> None:
    """Write ``text`` to the file ``output``, or to stdout."""
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def nested(group, name: str, func, help_text: str) -> argparse.ArgumentParser:
    """Add the command ``name`` to ``group``, with the common ``--state-dir`` and ``--park``."""
    sp = group.add_parser(name, help=help_text, description=help_text)
    sp.add_argument("--state-dir", help="runtime state directory (default ./var or $LINGTAN_STATE_DIR)")
    sp.add_argument("--park", help="park model YAML (default: the demo park or $LINGTAN_PARK_FILE)")
    sp.set_defaults(func=func)
    return sp


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lingtan", description="Lingtan (零碳) park energy-and-carbon platform")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        ep.load()(sub, nested)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
