"""The simulators' real servers against real clients: pymodbus, asyncua and paho with mosquitto."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from asyncua import Client, ua
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from lingtan.park import counters, load_park
from lingtan.park.index import iter_points
from lingtan.park.model import Park
from lingtan.settings import DEMO_PARK, Settings
from lingtan_collectors.common import codec
from lingtan_tools.simulate import Simulator, start_in_thread
from lingtan_tools.simulate.faults import FaultKind

START = dt.datetime(2025, 6, 18, 10, 0)  # a Wednesday morning, local time
START_MS = int(dt.datetime(2025, 6, 18, 2, 0, tzinfo=dt.UTC).timestamp() * 1000)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = cond()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


@pytest.fixture(scope="module")
def park() -> Park:
    return load_park(DEMO_PARK)


# --------------------------------------------------------------------------- Modbus


def modbus_settings() -> Settings:
    return Settings(modbus_host="127.0.0.1", modbus_port=free_port())


async def read(client: AsyncModbusTcpClient, fc: int, address: int, count: int, unit: int) -> Any:
    fn = client.read_holding_registers if fc == 3 else client.read_input_registers
    return await fn(address, count=count, device_id=unit)


def test_modbus_registers_decode_with_every_type_and_order(park):
    """Every Modbus point of the demo park, read over TCP and decoded, gives the engine's value."""

    async def body() -> None:
        settings = modbus_settings()
        # tick_s=3600: only tick 0 is published while the test reads, so values are steady
        emit = Path(tempfile.mkdtemp()) / "emit.jsonl"
        async with Simulator(park, settings, seed=4, start=START, tick_s=3600, fault_rate=0, protocols={"modbus"},
                             emit_log=emit) as sim:
            served = {r["point"]: r for r in read_log(emit) if r.get("protocol") == "modbus"}
            assert len(served) == 60 and all(r["ts_ms"] == START_MS for r in served.values())
            client = AsyncModbusTcpClient("127.0.0.1", port=settings.modbus_port, timeout=2)
            await client.connect()
            seen = set()
            for ref in (r for r in sim.engine.refs if r.point.modbus is not None):
                b = ref.point.modbus
                rr = await read(client, b.function, b.address, b.words, b.unit_id)
                assert not rr.isError(), (ref.id, rr)
                wire = codec.decode_registers(rr.registers, b)
                # independent decoding: undo the byte swap by hand, then pymodbus' own converter
                regs = rr.registers if b.byte_order == "big" else [((r & 0xFF) << 8) | (r >> 8) for r in rr.registers]
                assert client.convert_from_registers(regs, client.DATATYPE[b.type.upper()], word_order=b.word_order) == wire
                assert wire == sim.engine.wire(ref.id)
                value = ref.engineering_value(wire)
                assert served[ref.id]["raw"] == wire and served[ref.id]["value"] == value
                canonical = sim.engine.canonical(ref.id)
                step = ref.point.scale * ref.to_canonical if b.type in codec.INTEGER_BITS else abs(canonical) * 1e-6 + 1e-9
                modulus = counters.canonical_modulus(ref)
                expected = canonical % modulus if modulus else canonical
                assert expected - step <= value <= expected + step, (ref.id, value, canonical)
                seen.add((b.type, b.word_order, b.byte_order, b.function))
            assert {t for t, *_ in seen} == {"int16", "uint16", "int32", "uint32", "float32", "float64"}
            assert {(w, o) for _, w, o, _ in seen} == {("big", "big"), ("little", "big"), ("big", "little"), ("little", "little")}
            # holding and input registers are separate: unit 1 address 0 is a uint32 total (fc 3) and a float32 rate (fc 4)
            hr, ir = await read(client, 3, 0, 2, 1), await read(client, 4, 0, 2, 1)
            assert hr.registers != ir.registers
            # undefined address and unknown unit id
            assert (await read(client, 3, 1000, 2, 1)).exception_code == 0x02
            assert (await read(client, 3, 0, 2, 99)).exception_code == 0x0B
            assert (await client.write_register(0, 1, device_id=1)).exception_code == 0x02  # read-only
            client.close()

    asyncio.run(body())


def test_modbus_faults_exception_timeout_and_silence(park):
    async def body() -> None:
        settings = modbus_settings()
        async with Simulator(park, settings, seed=4, start=START, tick_s=0.2, fault_rate=0, protocols={"modbus"}) as sim:
            port = settings.modbus_port
            client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=3, retries=0)
            await client.connect()

            sim.inject(FaultKind.modbus_illegal_address, "m-e01-smt-l1.total", duration_s=30)
            assert (await read(client, 3, 0, 2, 1)).exception_code == 0x02
            assert not (await read(client, 3, 2, 2, 1)).isError()  # the neighbour answers
            sim.inject(FaultKind.modbus_device_failure, "m-e01-pcb-l1", duration_s=30)
            assert (await read(client, 3, 0, 2, 2)).exception_code == 0x04
            assert (await read(client, 4, 0, 2, 2)).exception_code == 0x04
            sim.clear_faults()
            assert not (await read(client, 3, 0, 2, 1)).isError()

            # timeout: the answer comes 1.5 x timeout_s + 0.25 = 1.75 s late (device timeout_s = 1.0)
            sim.inject(FaultKind.modbus_timeout, "m-e04-charger.total", duration_s=30)
            t0 = time.monotonic()
            rr = await read(client, 3, 0, 2, 20)
            assert not rr.isError() and time.monotonic() - t0 >= 1.7
            impatient = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1.0, retries=0)
            await impatient.connect()
            with pytest.raises(ModbusException):
                await read(impatient, 3, 0, 2, 20)
            impatient.close()
            sim.clear_faults()

            # silent meter: its unit id (10) does not answer at all, other units do
            sim.inject(FaultKind.silent, "m-e02-poly-l1", duration_s=30)
            quiet = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=0.5, retries=0)
            await quiet.connect()
            with pytest.raises(ModbusException):
                await read(quiet, 3, 4, 2, 10)  # m-e02-poly-l2, same unit
            quiet.close()
            assert not (await read(client, 3, 0, 2, 11)).isError()
            sim.clear_faults()
            client.close()

    asyncio.run(body())


def test_modbus_uint16_counter_rolls_over_on_the_wire(park):
    async def body() -> None:
        settings = modbus_settings()
        # 60 simulated seconds per 0.1 s tick: the near-wrap start rolls over within seconds
        async with Simulator(park, settings, seed=4, start=START, speed=600, tick_s=0.1, fault_rate=0, protocols={"modbus"}) as sim:
            ref = next(r for r in sim.engine.refs if r.id == "m-e01-smt-water.total")
            b = ref.point.modbus
            client = AsyncModbusTcpClient("127.0.0.1", port=settings.modbus_port, timeout=2)
            await client.connect()
            values: list[int] = []
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline and not any(x < y for y, x in zip(values, values[1:], strict=False)):
                rr = await read(client, b.function, b.address, b.words, b.unit_id)
                values.append(codec.decode_registers(rr.registers, b))
                await sim.wait_ticks(1)
            client.close()
            drops = [(y, x) for y, x in zip(values, values[1:], strict=False) if x < y]
            assert len(drops) == 1 and drops[0][0] > 65000 and drops[0][1] < 1000, values

    asyncio.run(body())


# --------------------------------------------------------------------------- OPC UA


@pytest.fixture(scope="module")
def opcua_sim(park: Park) -> Iterator[tuple[Any, Settings, Path]]:
    settings = Settings(opcua_endpoint=f"opc.tcp://127.0.0.1:{free_port()}")
    emit = Path(tempfile.mkdtemp()) / "emit.jsonl"
    th = start_in_thread(park, settings, seed=11, speed=60, tick_s=0.25, start=START, fault_rate=0,
                         protocols={"opcua"}, emit_log=emit)
    try:
        yield th, settings, emit
    finally:
        th.stop()


class Collect:
    """asyncua subscription handler that keeps every notification."""

    def __init__(self) -> None:
        self.items: dict[str, list[ua.DataValue]] = defaultdict(list)

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        self.items[node.nodeid.to_string()].append(data.monitored_item.Value)


def tick_of(dv: ua.DataValue) -> int:
    """Tick index of an OPC UA value from its simulated SourceTimestamp (ticks of 15 simulated s)."""
    ms = int(dv.SourceTimestamp.replace(tzinfo=dt.UTC).timestamp() * 1000)
    return (ms - START_MS) // 15000


async def wait_async(cond: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def test_opcua_subscription_source_timestamps_and_emission_log(opcua_sim):
    th, settings, emit = opcua_sim
    names = ["ns=2;s=m-pv-01.Rate", "ns=2;s=m-pv-01.Total", "ns=2;s=m-grid-main.TotalImport", "ns=2;s=m-chp-gas.Rate"]

    async def body() -> Collect:
        async with Client(settings.opcua_endpoint) as client:
            assert await client.get_namespace_index("urn:lingtan:demo") == 2
            handler = Collect()
            sub = await client.create_subscription(100, handler)
            await sub.subscribe_data_change([client.get_node(n) for n in names])
            await wait_async(lambda: all(len(handler.items[n]) >= 5 for n in names), 15, "5 notifications per node")
            await sub.delete()
            return handler

    handler = asyncio.run(body())
    logged = {(r["point"], r["ts_ms"]): r for r in read_log(emit) if r.get("protocol") == "opcua"}
    point_of = {"ns=2;s=m-pv-01.Rate": "m-pv-01.rate", "ns=2;s=m-pv-01.Total": "m-pv-01.total",
                "ns=2;s=m-grid-main.TotalImport": "m-grid-main.total_import", "ns=2;s=m-chp-gas.Rate": "m-chp-gas.rate"}
    step_ms = 0.25 * 60 * 1000
    for name, dvs in handler.items.items():
        stamps = [int(dv.SourceTimestamp.replace(tzinfo=dt.UTC).timestamp() * 1000) for dv in dvs]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
        assert all((s - START_MS) % step_ms == 0 for s in stamps)  # simulated time on the tick grid
        assert all(dv.StatusCode.is_good() and dv.ServerTimestamp is not None for dv in dvs)
        for dv, ts in zip(dvs, stamps, strict=True):
            rec = logged[(point_of[name], ts)]
            assert rec["raw"] == dv.Value.Value and rec["value"] == dv.Value.Value  # kWh, kW and m3 are canonical
        if name.endswith("Total") or name.endswith("TotalImport"):
            assert all(b.Value.Value >= a.Value.Value for a, b in zip(dvs, dvs[1:], strict=False))


def test_opcua_bad_status_silence_reset_and_history(opcua_sim):
    th, settings, emit = opcua_sim

    async def body() -> None:
        async with Client(settings.opcua_endpoint) as client:
            bad_node = client.get_node("ns=2;s=m-pv-02.Rate")
            handler = Collect()
            sub = await client.create_subscription(50, handler)
            await sub.subscribe_data_change([bad_node])
            fault = th.inject("opcua_bad_sensor", "m-pv-02.rate", duration_s=1.0)
            key = bad_node.nodeid.to_string()
            await wait_async(lambda: any(dv.StatusCode.value == ua.StatusCodes.BadSensorFailure for dv in handler.items[key]), 5, "bad status")
            await wait_async(lambda: handler.items[key][-1].StatusCode.is_good(), 5, "good status again")
            th.inject("opcua_comm_error", "m-pv-02", duration_s=0.5)
            await wait_async(lambda: any(dv.StatusCode.value == ua.StatusCodes.BadCommunicationError for dv in handler.items[key]), 5, "comm error")
            await sub.delete()

            # silence: no value updates during the fault's ticks, then updates resume
            wind = client.get_node("ns=2;s=m-wind-1.Rate")
            handler = Collect()
            sub = await client.create_subscription(50, handler)
            await sub.subscribe_data_change([wind])
            silent = th.inject("silent", "m-wind-1", duration_s=1.0)
            key = wind.nodeid.to_string()
            await wait_async(lambda: any(tick_of(dv) >= silent.until_tick + 1 for dv in handler.items[key]), 10, "updates after silence")
            ticks = [tick_of(dv) for dv in handler.items[key]]
            assert not [t for t in ticks if silent.start_tick < t < silent.until_tick]
            assert silent.until_tick - silent.start_tick == 1 + 4
            await sub.delete()

            # counter reset: the meter's total starts again from 0
            total = client.get_node("ns=2;s=m-pv-03.Total")
            before = await total.read_value()
            th.inject("counter_reset", "m-pv-03")
            th.wait_ticks(2)
            after = await total.read_value()
            assert before > 1000 and 0 <= after < 500 * 10 * 15 / 3600  # at most 10 ticks of 500 kW

            # history: raw values by simulated SourceTimestamp, including the bad ones
            node = client.get_node("ns=2;s=m-pv-02.Rate")
            hist = await node.read_raw_history(dt.datetime(2025, 6, 18, 1, 0, tzinfo=dt.UTC), dt.datetime(2025, 6, 19, tzinfo=dt.UTC))
            assert len(hist) >= 10
            assert any(dv.StatusCode.value == ua.StatusCodes.BadSensorFailure for dv in hist)
            logged = {r["ts_ms"]: r["value"] for r in read_log(emit) if r.get("protocol") == "opcua" and r["point"] == "m-pv-02.rate"}
            for dv in hist:
                ts = int(dv.SourceTimestamp.replace(tzinfo=dt.UTC).timestamp() * 1000)
                if dv.StatusCode.is_good():
                    assert logged[ts] == dv.Value.Value
                else:
                    assert ts not in logged  # bad values are not in the emission log
            faults = [r for r in read_log(emit) if "fault" in r]
            assert {"fault": "opcua_bad_sensor", "point": "m-pv-02.rate"}.items() <= faults[0].items()
            assert faults[0]["ts_ms"] == START_MS + fault.start_tick * 15000

    asyncio.run(body())


# --------------------------------------------------------------------------- MQTT


def _connectable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Subscriber:
    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{port}")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("lingtan/jsdemo/#", qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.ready.wait(10)

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.retain:  # left on the shared broker by someone else
            return
        with self.lock:
            self.messages.append((msg.topic, msg.payload))

    def on(self, topic: str) -> list[bytes]:
        with self.lock:
            return [p for t, p in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def mqtt_sim(park: Park, mosquitto: Any) -> Iterator[tuple[Any, Subscriber, Path]]:
    """The MQTT simulator publishing to the session's mosquitto (tests/fixtures.py), and a subscriber."""
    sub = Subscriber(mosquitto.port)
    emit = Path(tempfile.mkdtemp()) / "emit.jsonl"
    settings = Settings(mqtt_host="127.0.0.1", mqtt_port=mosquitto.port)
    th = start_in_thread(park, settings, seed=5, speed=60, tick_s=0.25, start=START, fault_rate=0,
                         protocols={"mqtt"}, emit_log=emit)
    try:
        yield th, sub, emit
    finally:
        th.stop()
        sub.close()


def test_mqtt_payloads_match_json_paths_and_emission_log_exactly_once(park, mqtt_sim):
    th, sub, emit = mqtt_sim
    refs = [r for r in iter_points(park) if r.point.mqtt is not None]
    topics = sorted({r.point.mqtt.topic for r in refs})
    wait_for(lambda: all(len(sub.on(t)) >= 4 for t in topics), 15, "4 messages on every topic")
    th.wait_ticks(2)  # let the last PUBACKs reach the log
    received: dict[tuple[str, int], list[float]] = defaultdict(list)
    by_topic = defaultdict(list)
    for r in refs:
        by_topic[r.point.mqtt.topic].append(r)
    for topic in topics:
        for payload in sub.on(topic):
            doc = json.loads(payload)
            assert (doc["ts"] - START_MS) % 15000 == 0
            assert set(doc) == {"ts", "energy", "power"}
            for r in by_topic[topic]:
                head, leaf = r.point.mqtt.json_path.split(".")
                received[(r.id, doc["ts"])].append(doc[head][leaf])
    logged = [r for r in read_log(emit) if r.get("protocol") == "mqtt"]
    window = max(ts for _, ts in received) - 15000  # every message up to here has been acknowledged
    log_keys = [(r["point"], r["ts_ms"]) for r in logged if r["ts_ms"] <= window]
    assert len(log_keys) == len(set(log_keys))
    assert set(log_keys) == {k for k in received if k[1] <= window}
    for rec in logged:
        values = received.get((rec["point"], rec["ts_ms"]))
        if values is not None:
            assert values == [rec["raw"]]  # exactly once, same number
    # counters only increase (apart from roll-over of the `rollover` points), rates stay in range
    for r in refs:
        series = sorted((ts, v[0]) for (pid, ts), v in received.items() if pid == r.id)
        if r.point.kind.value == "counter" and r.point.rollover is None:
            assert all(b >= a for (_, a), (_, b) in zip(series, series[1:], strict=False)), r.id
        if r.point.kind.value == "rate":
            assert all(r.point.valid_min <= v <= r.point.valid_max for _, v in series), r.id


def test_mqtt_faults_not_json_truncated_missing_field_silent(mqtt_sim):
    th, sub, emit = mqtt_sim
    base = "lingtan/jsdemo/e03/"
    n0 = {m: len(sub.on(base + m)) for m in ("m-e03-bakery-l1", "m-e03-bakery-l2", "m-e03-bakery-l3", "m-e03-bakery-l4")}
    f1 = th.inject("mqtt_not_json", "m-e03-bakery-l1", duration_s=0.5)
    f2 = th.inject("mqtt_truncated", "m-e03-bakery-l2.total", duration_s=0.5)
    f3 = th.inject("mqtt_missing_field", "m-e03-bakery-l3.total", duration_s=0.5)
    f4 = th.inject("silent", "m-e03-bakery-l4", duration_s=1.0)
    last = max(f.until_tick for f in (f1, f2, f3, f4))

    def parsed(m: str) -> list[Any]:
        out = []
        for p in sub.on(base + m)[n0[m]:]:
            try:
                out.append(json.loads(p))
            except ValueError:
                out.append(p)
        return out

    def tick(doc: dict[str, Any]) -> int:
        return (doc["ts"] - START_MS) // 15000

    wait_for(lambda: all(any(isinstance(x, dict) and tick(x) >= last for x in parsed(m)) for m in n0), 10, "messages after the faults")
    # each fault covers the next ceil(duration_s / tick_s) ticks: 2 for 0.5 s, 4 for 1 s
    broken = [x for x in parsed("m-e03-bakery-l1") if isinstance(x, bytes)]
    assert len(broken) == 2 and all(not x.startswith(b"{") for x in broken)
    truncated = [x for x in parsed("m-e03-bakery-l2") if isinstance(x, bytes)]
    assert len(truncated) == 2 and all(x.startswith(b'{"ts":') for x in truncated)
    l3 = [x for x in parsed("m-e03-bakery-l3") if isinstance(x, dict)]
    missing = [tick(x) for x in l3 if "energy" not in x]
    assert missing == [f3.start_tick + 1, f3.start_tick + 2] and all("value" in x["power"] for x in l3)
    l4 = [tick(x) for x in parsed("m-e03-bakery-l4")]
    assert not [t for t in l4 if f4.start_tick < t < f4.until_tick] and f4.until_tick in l4
    faults = [r for r in read_log(emit) if "fault" in r]
    assert [f["fault"] for f in faults[-4:]] == ["mqtt_not_json", "mqtt_truncated", "mqtt_missing_field", "silent"]
    assert faults[-1]["meter"] == "m-e03-bakery-l4" and faults[-2]["point"] == "m-e03-bakery-l3.total"
    logged = {(r["point"], r["ts_ms"]) for r in read_log(emit) if r.get("protocol") == "mqtt"}
    assert ("m-e03-bakery-l3.total", START_MS + missing[0] * 15000) not in logged
    assert ("m-e03-bakery-l3.rate", START_MS + missing[0] * 15000) in logged


# --------------------------------------------------------------------------- entry point


def test_run_stops_cleanly_on_sigterm(tmp_path):
    port = free_port()
    code = (
        "import logging; logging.basicConfig(level=logging.INFO)\n"
        "from lingtan.park import load_park\nfrom lingtan.settings import DEMO_PARK, Settings\n"
        "from lingtan_tools.simulate import run\n"
        f"run(load_park(DEMO_PARK), Settings(modbus_port={port}), protocols={{'modbus'}}, speed=60, fault_rate=0.01)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _connectable(port) or proc.poll() is not None, 20, "the Modbus port")
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out.decode()
    assert b"stopping simulators" in out
