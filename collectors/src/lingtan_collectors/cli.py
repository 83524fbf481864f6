"""``lingtan collect`` and ``lingtan telegraf-config``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lingtan.cli import load_park_or_exit, settings_from_args
from lingtan_collectors.protocols import protocol_folders


def cmd_collect(args: argparse.Namespace) -> int:
    from lingtan.park.model import Protocol
    from lingtan_collectors.run import run_collector

    settings = settings_from_args(args)
    run_collector(Protocol(args.protocol), load_park_or_exit(settings), settings)
    return 0


def cmd_telegraf_config(args: argparse.Namespace) -> int:
    from lingtan_collectors.telegraf import telegraf_config

    settings = settings_from_args(args)
    text = telegraf_config(load_park_or_exit(settings), settings)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def register(sub, nested) -> None:
    """Add ``collect`` and ``telegraf-config`` to the ``lingtan`` command."""
    sp = nested(sub, "collect", cmd_collect, "collect one protocol into InfluxDB")
    sp.add_argument("--protocol", required=True, choices=protocol_folders())
    sp = nested(sub, "telegraf-config", cmd_telegraf_config, "generate telegraf.conf from the park model")
    sp.add_argument("-o", "--output", help="file to write (default: stdout)")
