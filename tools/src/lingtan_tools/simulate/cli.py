"""``lingtan simulate``: serve the park's points from simulated devices."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from lingtan.cli import load_park_or_exit, settings_from_args


def cmd_simulate(args: argparse.Namespace) -> int:
    from datetime import datetime

    from lingtan_tools.simulate.runner import ALL_PROTOCOLS, run

    settings = settings_from_args(args)
    park = load_park_or_exit(settings)
    start = datetime.fromisoformat(args.start) if args.start else None
    protocols = set(args.protocols.split(",")) if args.protocols else ALL_PROTOCOLS
    state = None if args.counter_state == "none" else \
        Path(args.counter_state or settings.state_dir / "simulator" / "counters.json")
    if args.backfill:
        from lingtan_tools.simulate.backfill import (
            BackfillError,
            backfill_behind_live,
            follow_up_logged,
            run_backfill,
        )

        if start is not None or args.speed != 1.0:
            raise SystemExit("lingtan simulate: --backfill runs up to now; it cannot be combined with --start or --speed")
        if args.no_serve:
            try:
                result = run_backfill(park, settings, args.backfill, seed=args.seed, counter_state=state)
            except BackfillError as exc:
                raise SystemExit(f"lingtan simulate: {exc}") from None
            follow_up_logged(park, settings, result, args.seed)
            print(f"backfill: calc-service {result.calc or 'nothing to do'}")
            return 0
        # serving starts at once; the history is written behind the first live readings (docs/simulator.md)
        threading.Thread(target=backfill_behind_live, args=(park, settings, args.backfill, args.seed),
                         name="lingtan-backfill", daemon=True).start()
    run(park, settings, seed=args.seed, speed=args.speed, start=start, fault_rate=args.fault_rate,
        protocols=protocols, emit_log=Path(args.emit_log) if args.emit_log else None, counter_state=state)
    return 0


def register(sub, nested) -> None:
    """Add ``simulate`` to the ``lingtan`` command."""
    sp = nested(sub, "simulate", cmd_simulate, "serve the park's points from simulated devices (every protocol)")
    sp.add_argument("--seed", type=int, default=1)
    sp.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall-clock second")
    sp.add_argument("--start", help="simulated start time, ISO 8601 (default: now)")
    sp.add_argument("--fault-rate", type=float, default=0.0002, help="misbehaviour probability per point per tick")
    sp.add_argument("--protocols", help="comma-separated subset of the protocols (default all: opcua,modbus,mqtt)")
    sp.add_argument("--emit-log", help="write every emitted value as JSON lines to this file")
    sp.add_argument("--counter-state", default="",
                    help="file the counter readings are kept in across restarts "
                         "(default <state dir>/simulator/counters.json; 'none': start from seeded readings)")
    sp.add_argument("--backfill", metavar="DAYS",
                    help="first write this much simulated history (e.g. 60d) before the park's first stored "
                         "reading, then recalculate it and issue the forecasts (docs/simulator.md)")
    sp.add_argument("--no-serve", action="store_true", help="with --backfill: exit when it is done")
