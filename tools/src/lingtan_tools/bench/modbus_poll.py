"""Throughput of the Modbus collector against a pymodbus server in another process.

The server (:mod:`lingtan_collectors.modbus.simulator`) runs as a separate Python
process; the collector side is the real poll path (planning, pymodbus client, timeouts,
decoding, :class:`PointProcessor` normalisation and line-protocol encoding). Only the
InfluxDB write is left out: lines are counted, not sent. Each request reads 10 registers
holding 5 points (float32, uint32, float32, int32, float32); requests are 16 registers
apart, so no two merge.

    python -m lingtan_tools.bench.modbus_poll --units 20 --requests 60 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass

from lingtan.park.index import iter_points
from lingtan.park.model import Park
from lingtan_collectors.common.quality import PointProcessor
from lingtan_collectors.modbus.collector import MAX_CONNECTIONS, ModbusPoller
from lingtan_collectors.modbus.model import ModbusDevice
from lingtan_collectors.modbus.simulator import free_port

#: (type, registers) of the 5 points in each 10-register request
LAYOUT = [("float32", 2), ("uint32", 2), ("float32", 2), ("int32", 2), ("float32", 2)]
STRIDE = 16


@dataclass
class BenchResult:
    requests_per_s: float
    points_per_s: float
    seconds: float
    requests_per_cycle: int
    connections: int
    skipped_slots: int
    timeouts: int
    exceptions: int
    cpu_percent: float  # collector process CPU over the run (100 = one core)

    def text(self) -> str:
        return (f"{self.requests_per_s:,.0f} requests/s ({self.points_per_s:,.0f} points/s) sustained over "
                f"{self.seconds:.1f} s, {self.requests_per_cycle} requests of 10 registers per cycle, "
                f"{self.connections} connection(s), {self.skipped_slots} skipped slot(s), {self.timeouts} timeout(s), "
                f"{self.exceptions} exception(s), collector CPU {self.cpu_percent:.0f}%")


def bench_park(units: int, requests: int, interval_s: float, timeout_s: float = 1.0) -> Park:
    """A park with one device, ``units`` unit ids and ``requests`` 10-register requests per unit.

    Built with ``Park.model_validate`` rather than from YAML text: the pure-Python YAML
    parser needs seconds for tens of thousands of points, which is not what is measured here.
    """
    points = []
    for u in range(1, units + 1):
        for r in range(requests):
            address = r * STRIDE
            for i, (type_, words) in enumerate(LAYOUT):
                points.append({"id": f"b{u}.{r}.{i}", "kind": "rate", "unit": "m3/h",
                               "modbus": {"unit_id": u, "function": 3, "address": address, "type": type_}})
                address += words
    doc = {"park": {"id": "bench", "name": "bench", "province": "江苏", "grid_region": "east_china",
                    "location": {"latitude": 31.5, "longitude": 120.3}},
           "devices": [{"id": "plc", "protocol": "modbus", "poll_interval_s": interval_s, "timeout_s": timeout_s}],
           "enterprises": [{"id": "e1", "name": "bench", "credit_code": "91320214MA20EN001H", "industry_code": "C3971",
                            "units": [{"id": "u1", "name": "u", "meters": [
                                {"id": "m1", "name": "m", "carrier": "water", "device": "plc", "points": points}]}]}]}
    return Park.model_validate(doc)


def start_server(port: int, units: int, registers: int) -> subprocess.Popen[bytes]:
    """The test server in its own process; returns once it listens."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "lingtan_collectors.modbus.simulator", "--port", str(port), "--units", str(units),
         "--registers", str(registers)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    if b"listening" not in proc.stdout.readline():
        proc.kill()
        raise RuntimeError("the Modbus test server did not start")
    return proc


async def measure(port: int, units: int, requests: int, seconds: float, interval_s: float = 1.0,
                  connections: int = MAX_CONNECTIONS) -> BenchResult:
    """Run the poller for ``seconds`` against a server on ``port``; count answered requests."""
    park = bench_park(units, requests, interval_s)
    device = park.devices[0]
    assert isinstance(device, ModbusDevice)
    refs = iter_points(park)
    lines = [0]

    def submit(batch: list[str]) -> None:
        lines[0] += len(batch)

    poller = ModbusPoller(device, refs, PointProcessor(refs, device.id, 3600), submit, host="127.0.0.1", port=port,
                          max_connections=connections)
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    # measure whole slots: from the first slot boundary to `seconds` later
    interval_ns = poller.interval_ns
    await asyncio.sleep((interval_ns - time.time_ns() % interval_ns) / 1e9 + 0.005)
    r0, cpu0, t0 = poller.stats.responses, os.times(), time.monotonic()
    await asyncio.sleep(seconds)
    r1, cpu1, t1 = poller.stats.responses, os.times(), time.monotonic()
    stop.set()
    await asyncio.wait_for(task, 10)
    elapsed = t1 - t0
    cpu = (cpu1.user - cpu0.user + cpu1.system - cpu0.system) / elapsed * 100
    return BenchResult((r1 - r0) / elapsed, (r1 - r0) * len(LAYOUT) / elapsed, elapsed, units * requests,
                       len(poller.home_lanes), poller.stats.skipped_slots, poller.stats.timeouts,
                       poller.stats.exceptions, cpu)


def run(units: int, requests: int, seconds: float, interval_s: float = 1.0,
        connections: int = MAX_CONNECTIONS) -> BenchResult:
    """Start the server process, measure, stop the server."""
    port = free_port()
    server = start_server(port, units, requests * STRIDE)
    try:
        return asyncio.run(measure(port, units, requests, seconds, interval_s, connections))
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description="Modbus collector throughput against a pymodbus server process")
    parser.add_argument("--units", type=int, default=20)
    parser.add_argument("--requests", type=int, default=60, help="10-register requests per unit and cycle")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=1.0, help="poll interval in seconds")
    parser.add_argument("--connections", type=int, default=MAX_CONNECTIONS)
    args = parser.parse_args()
    print(run(args.units, args.requests, args.seconds, args.interval, args.connections).text())


if __name__ == "__main__":
    main()
