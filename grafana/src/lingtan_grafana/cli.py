"""``lingtan dashboards build``: write the dashboards and alerting provisioning."""

from __future__ import annotations

import argparse


def cmd_dashboards_build(args: argparse.Namespace) -> int:
    from lingtan_grafana.build import build

    differ = build(check=args.check)
    for path in differ:
        print(("out of date: " if args.check else "wrote ") + str(path))
    return 1 if args.check and differ else 0


def register(sub, nested) -> None:
    """Add ``dashboards build`` to the ``lingtan`` command."""
    dash = sub.add_parser("dashboards", help="Grafana dashboards and alerting as code")
    dsub = dash.add_subparsers(dest="dashboards_command", required=True)
    sp = dsub.add_parser("build", help="write dashboards/ and grafana/provisioning/ from grafana/src/lingtan_grafana/")
    sp.add_argument("--check", action="store_true", help="write nothing; exit 1 if any file is out of date")
    sp.set_defaults(func=cmd_dashboards_build)
