"""``lingtan influx init``: database, retention policies and continuous queries."""

from __future__ import annotations

import argparse

from lingtan.cli import settings_from_args


def cmd_influx_init(args: argparse.Namespace) -> int:
    from lingtan.influxdb import InfluxClient
    from lingtan_influx.provision import init_influx

    settings = settings_from_args(args)
    for entry in init_influx(InfluxClient.from_settings(settings), admin_user=settings.influx_user,
                             admin_password=settings.influx_password):
        print(entry)
    return 0


def register(sub, nested) -> None:
    """Add ``influx init`` to the ``lingtan`` command."""
    influx = sub.add_parser("influx", help="InfluxDB administration")
    isub = influx.add_subparsers(dest="influx_command", required=True)
    nested(isub, "init", cmd_influx_init, "create database, retention policies and continuous queries (idempotent)")
