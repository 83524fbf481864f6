"""``lingtan park-check``: validate a park model file."""

from __future__ import annotations

import argparse

from lingtan.cli import load_park_or_exit, settings_from_args


def cmd_park_check(args: argparse.Namespace) -> int:
    from lingtan.park.index import iter_points

    settings = settings_from_args(args)
    park = load_park_or_exit(settings)
    refs = iter_points(park)
    by_proto: dict[str, int] = {}
    for r in refs:
        by_proto[r.protocol.value] = by_proto.get(r.protocol.value, 0) + 1
    print(f"{settings.park_file}: park {park.park.id} ({park.park.name}) is valid: "
          f"{len(park.enterprises)} enterprises, {len(refs)} points "
          + ", ".join(f"{k} {v}" for k, v in sorted(by_proto.items())))
    return 0


def register(sub, nested) -> None:
    """Add ``park-check`` to the ``lingtan`` command."""
    nested(sub, "park-check", cmd_park_check, "validate a park model file")
