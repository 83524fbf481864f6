"""Modbus collector against a real pymodbus 3.16 server and a real influxd.

Golden cases live in ``testcases/<case>/``:

* ``park.yaml``: a park-model fragment with one Modbus device (host/port are the test server's);
* ``registers.yaml``: ``units: {unit id: {3|4: {address: [register, ...]}}}`` that the server
  holds, and optionally ``cycles:``, one entry per poll cycle with ``set:`` (register
  changes, same shape as ``units``) and ``faults:`` (``{unit id: {exception|delay_s|silent: ...}}``,
  kept until changed) applied before that cycle; without ``cycles`` the collector polls once;
* ``expected.lp``: every line that must end up in InfluxDB (``collector_stats`` aside);
  cycle ``i`` (from 0) is the slot starting at 2024-05-01T00:00:00Z + ``i`` poll intervals;
* ``expected.requests`` (optional): every request the server received, ``cycle: unit U fcF A..B``,
  sorted within each cycle (lanes run in parallel);
* ``expected.err`` instead of the above: text the configuration error must contain.

Polls are driven cycle by cycle through :meth:`ModbusPoller.poll` so timestamps are exact;
the free-running :meth:`ModbusPoller.run` (grid alignment, backoff in real time, restart)
is tested further down.
"""

from __future__ import annotations

import asyncio
import os
import signal
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from lingtan.influxdb import InfluxClient
from lingtan.park.index import iter_points
from lingtan.park.loader import ParkModelError, load_park
from lingtan.park.model import Park, Protocol
from lingtan.settings import Settings
from lingtan_collectors.common.quality import PointProcessor
from lingtan_collectors.common.runtime import CollectorRuntime
from lingtan_collectors.modbus.collector import ModbusPoller, run_modbus
from lingtan_collectors.modbus.model import ModbusDevice
from lingtan_collectors.modbus.simulator import RegisterServer, free_port
from tests.golden import influx_lines

HERE = Path(__file__).resolve().parent
CASES = sorted(p.name for p in (HERE / "testcases").iterdir() if (p / "park.yaml").exists())
BASE_NS = 1714521600 * 10**9  # 2024-05-01T00:00:00Z


# --------------------------------------------------------------------------- InfluxDB helpers








def read_lines(path: Path) -> list[str]:  # in file order
    return [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


# --------------------------------------------------------------------------- harness


def make_runtime(park: Park, state_dir: Path, influx: InfluxClient, port: int) -> CollectorRuntime:
    """A started runtime whose Modbus devices default to ``127.0.0.1:port``."""
    settings = Settings(state_dir=state_dir, influx_url=influx.url, influx_db=influx.database,
                        influx_user=influx.username, influx_password=influx.password,
                        modbus_host="127.0.0.1", modbus_port=port, write_flush_interval_s=0.05)
    return CollectorRuntime("modbus", Protocol.modbus, park, settings, stats_interval_s=3600).start()


def server_registers(units: dict) -> dict[int, dict[int, dict[int, int]]]:
    """``{unit: {fc: {address: [regs]}}}`` (YAML shape) -> ``{unit: {fc: {address: reg}}}``."""
    out: dict[int, dict[int, dict[int, int]]] = {}
    for unit_id, functions in units.items():
        for fc, blocks in (functions or {}).items():
            regs = out.setdefault(int(unit_id), {}).setdefault(int(fc), {})
            for address, values in blocks.items():
                for i, v in enumerate(values):
                    regs[int(address) + i] = int(v)
    return out


def modbus_device(park: Park) -> ModbusDevice:
    devices = [d for d in park.devices if isinstance(d, ModbusDevice)]
    assert len(devices) == 1, "a golden case has exactly one Modbus device"
    return devices[0]


async def wait_until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


# --------------------------------------------------------------------------- golden cases


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, influx_db: InfluxClient, tmp_path: Path) -> None:
    """Model fragment + register contents -> exactly the expected lines in InfluxDB."""
    cdir = HERE / "testcases" / case
    if (cdir / "expected.err").exists():
        with pytest.raises(ParkModelError) as err:
            load_park(cdir / "park.yaml")
        for want in read_lines(cdir / "expected.err"):
            assert want in str(err.value), f"{want!r} not in:\n{err.value}"
        assert influx_lines(influx_db) == []
        return
    park = load_park(cdir / "park.yaml")
    spec = yaml.safe_load((cdir / "registers.yaml").read_text())
    cycles = spec.get("cycles") or [{}]
    seen: list[str] = []

    async def scenario() -> None:
        server = RegisterServer(server_registers(spec["units"]))
        async with server:
            runtime = make_runtime(park, tmp_path, influx_db, server.port)
            poller = ModbusPoller.for_device(runtime, modbus_device(park))
            slot0 = BASE_NS // poller.interval_ns
            try:
                for i, cycle in enumerate(cycles):
                    for unit_id, regs in server_registers(cycle.get("set") or {}).items():
                        for fc, block in regs.items():
                            for address, value in block.items():
                                server.set_registers(unit_id, fc, address, [value])
                    for unit_id, fault in (cycle.get("faults") or {}).items():
                        server.fault(int(unit_id), **(fault or {}))
                    start = len(server.requests)
                    runtime.submit(await poller.poll(slot0 + i))
                    got = sorted(server.requests[start:], key=lambda r: (r.unit_id, r.function, r.address))
                    seen.extend(f"{i + 1}: unit {r.unit_id} fc{r.function} {r.address}..{r.address + r.count - 1}"
                                for r in got)
            finally:
                poller.close()
                await asyncio.to_thread(runtime.stop)

    asyncio.run(scenario())
    actual = influx_lines(influx_db)
    expected = sorted(read_lines(cdir / "expected.lp"))
    assert actual == expected, "actual lines:\n" + "\n".join(actual)
    if (cdir / "expected.requests").exists():
        assert seen == read_lines(cdir / "expected.requests"), "actual requests:\n" + "\n".join(seen)


def test_sample_config_is_a_valid_park() -> None:
    park = load_park(HERE / "sample.yaml")
    device = modbus_device(park)
    assert (device.host, device.port) == ("127.0.0.1", 5020)
    settings = Settings(state_dir=Path("/nonexistent"))
    from lingtan_collectors.modbus.collector import endpoint

    assert endpoint(device, settings) == ("127.0.0.1", 5020)
    assert endpoint(device.model_copy(update={"host": None, "port": None}), settings) == (
        settings.modbus_host, settings.modbus_port)


# --------------------------------------------------------------------------- free-running collector

PARK_HEAD = {
    "park": {"id": "t", "name": "live", "province": "江苏", "grid_region": "east_china",
             "location": {"latitude": 31.5, "longitude": 120.3}},
}


def make_park(device: dict[str, Any], units: dict[int, int], tmp_path: Path) -> Park:
    """A park with one Modbus device and, per unit id, ``n`` uint16 rate points at holding registers 0..n-1."""
    points = [{"id": f"p{u}.{a}", "kind": "rate", "unit": "m3/h",
               "modbus": {"unit_id": u, "function": 3, "address": a, "type": "uint16"}}
              for u, n in units.items() for a in range(n)]
    doc = {**PARK_HEAD, "devices": [{"id": "plc", "protocol": "modbus", **device}],
           "enterprises": [{"id": "e1", "name": "测试企业", "credit_code": "91320214MA20EN001H",
                            "industry_code": "C3971",
                            "units": [{"id": "u1", "name": "车间", "meters": [
                                {"id": "m1", "name": "表", "carrier": "water", "device": "plc", "points": points}]}]}]}
    path = tmp_path / "park.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    return load_park(path)


def unit_registers(units: dict[int, int]) -> dict[int, dict[int, dict[int, int]]]:
    """Register ``a`` of unit ``u`` holds ``100 * u + a``."""
    return {u: {3: {a: 100 * u + a for a in range(n)}} for u, n in units.items()}


def rows(client: InfluxClient, q: str) -> list[dict]:
    return client.rows(q, epoch="ns")


def test_run_aligns_to_the_grid_and_restarts_without_duplicates(influx_db: InfluxClient, tmp_path: Path) -> None:
    """Samples carry the slot start; two runs back to back never stamp a slot twice."""
    units = {1: 2, 2: 1}
    park = make_park({"poll_interval_s": 0.2, "timeout_s": 0.5}, units, tmp_path)
    submitted: list[str] = []

    async def scenario() -> None:
        async with RegisterServer(unit_registers(units)) as server:
            for run in range(2):  # a restart: a new runtime and poller on the same state dir
                runtime = make_runtime(park, tmp_path, influx_db, server.port)
                original = runtime.submit
                runtime.submit = lambda lines, original=original: (submitted.extend(lines), original(lines))[1]
                stop = asyncio.Event()
                task = asyncio.create_task(run_modbus(runtime, stop))
                await asyncio.sleep(1.1 if run == 0 else 0.7)
                t0 = time.monotonic()
                stop.set()
                await asyncio.wait_for(task, 5)
                assert time.monotonic() - t0 < 0.5, "stop must not wait for the next slot"
                await asyncio.to_thread(runtime.stop)

    asyncio.run(scenario())
    interval_ns = 200_000_000
    stamps = sorted(int(ln.rsplit(" ", 1)[1]) for ln in submitted if ln.startswith("water,") and "point=p1.0" in ln)
    assert len(stamps) >= 7, stamps
    assert all(ts % interval_ns == 0 for ts in stamps)
    assert len(set(stamps)) == len(stamps), "a slot was sampled twice"
    stored = rows(influx_db, 'SELECT rate FROM water GROUP BY point')
    per_point: dict[str, list[int]] = {}
    for r in stored:
        per_point.setdefault(r["point"], []).append(r["time"])
    assert set(per_point) == {"p1.0", "p1.1", "p2.0"}
    assert sorted(per_point["p1.0"]) == stamps
    assert {r["rate"] for r in stored if r["point"] == "p2.0"} == {200.0}
    assert not rows(influx_db, "SELECT * FROM data_quality")


def test_silent_unit_backs_off_in_real_time_and_recovers(influx_db: InfluxClient, tmp_path: Path) -> None:
    """A silent unit times out, is polled ever more rarely (capped), while the other unit keeps every slot."""
    units = {1: 1, 2: 1}
    park = make_park({"poll_interval_s": 0.1, "timeout_s": 0.04, "retries": 1, "backoff_max_s": 0.4}, units, tmp_path)

    async def scenario() -> None:
        async with RegisterServer(unit_registers(units)) as server:
            runtime = make_runtime(park, tmp_path, influx_db, server.port)
            poller = ModbusPoller.for_device(runtime, modbus_device(park))
            server.fault(1, silent=True)
            stop = asyncio.Event()
            task = asyncio.create_task(poller.run(stop))
            await asyncio.sleep(2.55)
            attempts_1 = sum(r.unit_id == 1 for r in server.requests)
            polls_2 = sum(r.unit_id == 2 for r in server.requests)
            # 25 slots: unit 1 polled in slots 0, 1, 3, 7, 11, 15, 19, 23 (backoff 1, 2, 4, 4, ... slots), 2 attempts each
            assert 12 <= attempts_1 <= 18, attempts_1
            assert polls_2 >= 23, polls_2
            assert poller.stats.skipped_slots == 0
            server.fault(1)
            await wait_until(lambda: any(r.unit_id == 1 for r in server.requests[-3:]) and
                             poller.units[1].failures == 0, timeout=2, what="unit 1 to answer again")
            stop.set()
            await asyncio.wait_for(task, 5)
            await asyncio.to_thread(runtime.stop)

    asyncio.run(scenario())
    timeouts = rows(influx_db, "SELECT * FROM data_quality WHERE reason = 'timeout'")
    assert 6 <= len(timeouts) <= 9 and {r["point"] for r in timeouts} == {"p1.0"}
    assert all("no response within 0.04 s (2 attempt(s))" in r["detail"] for r in timeouts)
    assert rows(influx_db, "SELECT rate FROM water WHERE point = 'p1.0'"), "unit 1 delivers again"


def test_connection_refused_is_a_timeout_until_the_device_appears(influx_db: InfluxClient, tmp_path: Path) -> None:
    units = {1: 1}
    park = make_park({"poll_interval_s": 0.1, "timeout_s": 0.2, "retries": 1, "backoff_max_s": 0.3}, units, tmp_path)
    port = free_port()

    async def scenario() -> None:
        runtime = make_runtime(park, tmp_path, influx_db, port)
        poller = ModbusPoller.for_device(runtime, modbus_device(park))
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        await wait_until(lambda: poller.stats.timeouts >= 2, timeout=3, what="connection failures")
        assert poller.stats.connects == 0
        async with RegisterServer(unit_registers(units), port=port):
            await wait_until(lambda: poller.units[1].failures == 0 and poller.stats.responses > 0, timeout=3,
                             what="the device to be polled")
            stop.set()
            await asyncio.wait_for(task, 5)
        await asyncio.to_thread(runtime.stop)

    asyncio.run(scenario())
    timeouts = rows(influx_db, "SELECT * FROM data_quality WHERE reason = 'timeout'")
    assert timeouts and all(r["detail"] == f"unit 1 fc3 0..0: cannot connect to 127.0.0.1:{port} (2 attempt(s))"
                            for r in timeouts)
    assert {r["rate"] for r in rows(influx_db, "SELECT rate FROM water")} == {100.0}


def test_late_answer_is_never_taken_for_the_next_request(tmp_path: Path) -> None:
    """Units sharing one connection: after unit 1 times out, unit 2's answer is unit 2's.

    pymodbus 3.16's server stamps a delayed response with the transaction id of the latest
    request on that connection, so without dropping the connection after a timeout the
    late answer to unit 1 would be accepted as the answer to unit 2.
    """
    units = {1: 1, 2: 1}
    park = make_park({"timeout_s": 0.2, "retries": 0}, units, tmp_path)
    refs = iter_points(park)

    async def scenario() -> list[str]:
        async with RegisterServer(unit_registers(units)) as server:
            server.fault(1, delay_s=0.3)
            server.fault(2, delay_s=0.15)
            poller = ModbusPoller(modbus_device(park), refs, PointProcessor(refs, "plc", 60), lambda lines: None,
                                  host="127.0.0.1", port=server.port, max_connections=1)
            assert len(poller.home_lanes) == 1
            try:
                return await poller.poll(BASE_NS // poller.interval_ns)
            finally:
                poller.close()

    lines = asyncio.run(scenario())
    assert any("reason=timeout" in ln and "point=p1.0" in ln for ln in lines)
    values = [ln for ln in lines if ln.startswith("water,")]
    assert len(values) == 1 and "point=p2.0" in values[0] and " rate=200.0 " in values[0], values


def test_units_are_spread_over_parallel_connections(tmp_path: Path) -> None:
    """8 units -> 4 connections; a silent unit holds up only the units of its own connection."""
    units = dict.fromkeys(range(1, 9), 2)
    park = make_park({"timeout_s": 0.3, "retries": 0}, units, tmp_path)
    refs = iter_points(park)

    async def scenario() -> tuple[list[str], float, ModbusPoller]:
        async with RegisterServer(unit_registers(units)) as server:
            server.fault(3, silent=True)
            poller = ModbusPoller(modbus_device(park), refs, PointProcessor(refs, "plc", 60), lambda lines: None,
                                  host="127.0.0.1", port=server.port)
            try:
                t0 = time.monotonic()
                lines = await poller.poll(BASE_NS // poller.interval_ns)
                return lines, time.monotonic() - t0, poller
            finally:
                poller.close()

    lines, elapsed, poller = asyncio.run(scenario())
    assert [[u.unit_id for u in lane.units] for lane in poller.home_lanes] == [[1, 5], [2, 6], [3, 7], [4, 8]]
    assert poller.stats.connects == 5  # 4 lanes, and lane 3 reconnects for unit 7 after unit 3's timeout
    assert 0.3 <= elapsed < 0.6  # one timeout, not one per lane
    values = sorted(ln.split(",point=")[1].split(",")[0] for ln in lines if ln.startswith("water,"))
    assert values == sorted(f"p{u}.{a}" for u in units if u != 3 for a in range(2))
    assert sum("reason=timeout" in ln for ln in lines) == 2


def test_throughput_at_least_1000_requests_per_second() -> None:
    """1,200 requests of 10 registers per 1 s cycle against a pymodbus server in another process."""
    from lingtan_tools.bench import modbus_poll as bench

    result = bench.run(units=10, requests=120, seconds=3.0)
    print(result.text())
    assert result.requests_per_s >= 1000, result.text()
    assert result.skipped_slots == 0 and result.timeouts == 0 and result.exceptions == 0, result.text()


MAIN_SCRIPT = """
import logging, sys
from lingtan_collectors.common.runtime import CollectorRuntime
from lingtan_collectors.modbus.collector import main
from lingtan.park.loader import load_park
from lingtan.park.model import Protocol
from lingtan.settings import load_settings

logging.basicConfig(level=logging.INFO)
settings = load_settings()
main(CollectorRuntime("collector-modbus", Protocol.modbus, load_park(settings.park_file), settings))
print("main returned", flush=True)
"""


def test_main_polls_until_sigterm(influx_db: InfluxClient, tmp_path: Path) -> None:
    """``main(runtime)`` in its own process: polls, writes to InfluxDB, exits cleanly on SIGTERM."""
    units = {1: 2}
    make_park({"poll_interval_s": 0.2}, units, tmp_path)

    async def scenario() -> tuple[int, str]:
        async with RegisterServer(unit_registers(units)) as server:
            env = {**os.environ, "LINGTAN_STATE_DIR": str(tmp_path / "state"), "LINGTAN_PARK_FILE": str(tmp_path / "park.yaml"),
                   "LINGTAN_INFLUX_URL": influx_db.url, "LINGTAN_INFLUX_DB": influx_db.database,
                   "LINGTAN_INFLUX_USER": influx_db.username, "LINGTAN_INFLUX_PASSWORD": influx_db.password,
                   "LINGTAN_MODBUS_PORT": str(server.port), "LINGTAN_WRITE_FLUSH_INTERVAL_S": "0.1"}
            proc = await asyncio.create_subprocess_exec(sys.executable, "-c", MAIN_SCRIPT, env=env,
                                                        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            try:
                deadline = time.monotonic() + 20
                while not await asyncio.to_thread(rows, influx_db, "SELECT rate FROM water"):
                    assert time.monotonic() < deadline, "no data from the collector process"
                    await asyncio.sleep(0.2)
            finally:
                proc.send_signal(signal.SIGTERM)
                out, _ = await asyncio.wait_for(proc.communicate(), 20)
            return proc.returncode or 0, out.decode()

    code, out = asyncio.run(scenario())
    assert code == 0, out
    assert "main returned" in out, out
    assert "Modbus device plc at 127.0.0.1" in out and "2 points in 1 requests over 1 connection(s)" in out, out
    assert {r["point"]: r["rate"] for r in rows(influx_db, "SELECT last(rate) AS rate FROM water GROUP BY point")} == {
        "p1.0": 100.0, "p1.1": 101.0}
    status = (tmp_path / "state" / "run" / "collector-modbus.status.json").read_text()
    assert '"written"' in status


async def short_answer_server(port: int) -> asyncio.Server:
    """A misbehaving Modbus TCP device: answers every read with one register fewer than asked."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readexactly(7)
                tid, _, length, unit = struct.unpack(">HHHB", head)
                fc, _address, count = struct.unpack(">BHH", await reader.readexactly(length - 1))
                n = count - 1
                body = struct.pack(">BB", fc, 2 * n) + struct.pack(f">{n}H", *range(7, 7 + n))
                writer.write(struct.pack(">HHHB", tid, 0, len(body) + 1, unit) + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port)


def test_short_answer_is_a_parse_error(tmp_path: Path) -> None:
    """Fields the answer does not cover -> parse_error; the fields it covers are decoded."""
    park = make_park({"timeout_s": 0.5}, {1: 3}, tmp_path)
    refs = iter_points(park)

    async def scenario() -> list[str]:
        port = free_port()
        server = await short_answer_server(port)
        poller = ModbusPoller(modbus_device(park), refs, PointProcessor(refs, "plc", 60), lambda lines: None,
                              host="127.0.0.1", port=port)
        try:
            return await poller.poll(BASE_NS // poller.interval_ns)
        finally:
            poller.close()
            server.close()
            await server.wait_closed()

    lines = asyncio.run(scenario())
    assert [ln.split(",point=")[1].split(",")[0] for ln in lines if ln.startswith("water,")] == ["p1.0", "p1.1"]
    errors = [ln for ln in lines if "reason=parse_error" in ln]
    assert len(errors) == 1 and "point=p1.2" in errors[0]
    assert 'detail="unit 1 fc3 0..2: response has 2 registers, 3 requested"' in errors[0]


def test_silent_unit_does_not_hold_up_its_lane(tmp_path: Path) -> None:
    """Units 1 and 2 share a connection; unit 1 goes silent: after its first failed poll it is
    probed over another connection, and unit 2 keeps (almost) every slot."""
    units = {1: 1, 2: 1}
    park = make_park({"poll_interval_s": 0.2, "timeout_s": 0.15, "retries": 1, "backoff_max_s": 0.4}, units, tmp_path)
    refs = iter_points(park)

    async def scenario() -> tuple[int, int, int]:
        async with RegisterServer(unit_registers(units)) as server:
            poller = ModbusPoller(modbus_device(park), refs, PointProcessor(refs, "plc", 60), lambda lines: None,
                                  host="127.0.0.1", port=server.port, max_connections=1)
            assert [[u.unit_id for u in lane.units] for lane in poller.lanes] == [[1, 2], [1, 2]]
            server.fault(1, silent=True)
            stop = asyncio.Event()
            task = asyncio.create_task(poller.run(stop))
            await asyncio.sleep(3.0)
            stop.set()
            await asyncio.wait_for(task, 5)
            polls_2 = sum(r.unit_id == 2 for r in server.requests)
            return polls_2, poller.home_lanes[0].skipped_slots, poller.units[1].failures

    polls_2, skipped, failures_1 = asyncio.run(scenario())
    assert failures_1 >= 4
    assert skipped <= 2  # the first failure, still on the shared connection (0.3 s > 0.2 s interval)
    assert polls_2 >= 12, polls_2  # of 15 slots
