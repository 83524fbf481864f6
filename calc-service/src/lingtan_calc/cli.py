"""``lingtan accounting ...`` (offline inventories, the factor library) and ``lingtan calc ...``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from lingtan.cli import emit, settings_from_args

log = logging.getLogger("lingtan")


def cmd_accounting_evaluate(args: argparse.Namespace) -> int:
    """Account an offline inventory (JSON or YAML) and print the results."""
    from lingtan_calc.core.accounting.factors import FactorLibrary, FactorNotFound
    from lingtan_calc.core.accounting.inventory import evaluate, load_inventory
    from lingtan_calc.core.accounting.report import accounts_dict, totals_table

    try:
        inv = load_inventory(Path(args.file))
        shipped = FactorLibrary.shipped()
        lib = shipped.with_overrides(inv.factor_overrides)
        acc = evaluate(inv, shipped)
    except (ValueError, FactorNotFound) as exc:
        print(f"lingtan accounting evaluate: {exc}", file=sys.stderr)
        return 2
    if args.format == "table":
        emit(totals_table(acc, lib) + "\n", args.output)
    else:
        emit(json.dumps(accounts_dict(acc, lib), ensure_ascii=False, indent=1) + "\n", args.output)
    return 0


def cmd_accounting_schema(args: argparse.Namespace) -> int:
    """Print (or write) the JSON Schema of the offline inventory format."""
    from lingtan_calc.core.accounting.inventory import inventory_schema

    emit(json.dumps(inventory_schema(), ensure_ascii=False, indent=2) + "\n", args.output)
    return 0


def cmd_accounting_factors(args: argparse.Namespace) -> int:
    """List the factor library (shipped factors), with sources."""
    from lingtan_calc.core.accounting.factors import FactorLibrary
    from lingtan_calc.core.accounting.report import factor_dict

    factors = [f for f in FactorLibrary.shipped() if not args.kind or f.kind.value == args.kind]
    if args.json:
        sys.stdout.write(json.dumps([factor_dict(f) for f in factors], ensure_ascii=False, indent=1) + "\n")
        return 0
    for f in factors:
        period = f"{f.valid_from}..{f.valid_to or ''}"
        print(f"{f.id:<36} {f.kind.value:<22} {f.subject:<14} {f.value:>12g} {f.unit:<14} {f.region:<11} "
              f"{period:<22} {f.cite()} [{f.confidence}]")
    return 0


def cmd_calc_serve(args: argparse.Namespace) -> int:
    """Run the calc-service (API and scheduler) until SIGTERM."""
    from waitress import serve

    from lingtan_calc.service.app import create_app, service_of

    settings = settings_from_args(args)
    app = create_app(settings)
    log.info("calc-service on http://%s:%d (park %s)", settings.calc_host, settings.calc_port,
             service_of(app).park.park.id)
    try:
        serve(app, host=settings.calc_host, port=settings.calc_port, threads=8, ident="lingtan-calc")
    finally:
        service_of(app).stop()
    return 0


def cmd_calc_recalc(args: argparse.Namespace) -> int:
    """Recalculate a range now, in this process, and print what changed."""
    import pandas as pd

    from lingtan_calc.service.app import create_app, service_of

    app = create_app(settings_from_args(args), start_scheduler=False)
    svc = service_of(app)
    try:
        job = svc.submit(pd.Timestamp(args.start).tz_localize("Asia/Shanghai"),
                         pd.Timestamp(args.end).tz_localize("Asia/Shanghai"), args.reason, os.environ.get("USER", "cli"))
    except ValueError as exc:
        print(f"lingtan calc recalc: {exc}", file=sys.stderr)
        return 2
    svc._queue.clear()
    svc.run_job(job)
    print(json.dumps(job.as_dict(), ensure_ascii=False, indent=1))
    return 0 if job.state == "done" else 1


def register(sub, nested) -> None:
    """Add ``accounting evaluate|schema|factors`` and ``calc serve|recalc`` to the ``lingtan`` command."""
    acc = sub.add_parser("accounting", help="energy and carbon accounting (GB/T 2589, GB/T 32150)")
    asub = acc.add_subparsers(dest="accounting_command", required=True)
    sp = asub.add_parser("evaluate", help="account an offline inventory file (JSON or YAML)")
    sp.add_argument("file")
    sp.add_argument("--format", choices=["json", "table"], default="json")
    sp.add_argument("-o", "--output", help="file to write (default: stdout)")
    sp.set_defaults(func=cmd_accounting_evaluate)
    sp = asub.add_parser("schema", help="the JSON Schema of the inventory format")
    sp.add_argument("-o", "--output")
    sp.set_defaults(func=cmd_accounting_schema)
    sp = asub.add_parser("factors", help="list the shipped factor library with sources")
    sp.add_argument("--kind", help="only this kind, e.g. grid_emission_factor")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_accounting_factors)
    calc = sub.add_parser("calc", help="the calc-service: derived energy and carbon series")
    csub = calc.add_subparsers(dest="calc_command", required=True)
    nested(csub, "serve", cmd_calc_serve, "run the calc-service API and scheduler")
    sp = nested(csub, "recalc", cmd_calc_recalc, "recalculate a range now (hours, then days, months, years)")
    sp.add_argument("--start", required=True, help="YYYY-MM-DD[THH:MM], Asia/Shanghai")
    sp.add_argument("--end", required=True)
    sp.add_argument("--reason", required=True)
