"""``lingtan collect``: run one protocol's collector as a process until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading

from lingtan.park.model import Park, Protocol
from lingtan.settings import Settings
from lingtan_collectors.common.runtime import CollectorRuntime
from lingtan_collectors.plugin import CollectorPlugin
from lingtan_collectors.plugins import plugin as plugin_of

log = logging.getLogger(__name__)


def collector_name(protocol: Protocol) -> str:
    return f"collector-{protocol.value}"


def run_collector(protocol: Protocol, park: Park, settings: Settings) -> None:
    """Collect ``protocol`` for every device of ``park`` until SIGTERM/SIGINT."""
    runtime = CollectorRuntime(collector_name(protocol), protocol, park, settings)
    if not runtime.devices:
        raise SystemExit(f"the park model {settings.park_file} has no {protocol.value} device")
    runtime.start()
    log.info("%s: %d device(s), %d point(s), writing to %s db=%s", runtime.name, len(runtime.devices),
             sum(len(p) for p in runtime.points.values()), settings.influx_url, settings.influx_db)
    plugin = plugin_of(protocol)
    try:
        if plugin.blocking:
            stop = threading.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
            plugin.run(runtime, stop)
        else:
            asyncio.run(_run_async(plugin, runtime))
    finally:
        runtime.stop()


async def _run_async(plugin: CollectorPlugin, runtime: CollectorRuntime) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await plugin.run(runtime, stop)
