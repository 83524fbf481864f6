"""Throughput benchmark: QoS 1 MQTT messages per second through the collector into InfluxDB.

Starts a real mosquitto and a real influxd in a temporary state dir (loopback), then:

* ``backlog``: the collector's persistent session is created, the collector goes away,
  ``--messages`` messages are published (the broker queues them for the session), and the
  collector is started again and drains the queue: messages/s from its start until every
  line is written to InfluxDB. This measures the collector (and broker delivery), not the
  publishers.
* ``live``: ``--publishers`` processes publish while the collector runs.

Every message carries the demo payload (two points); the run checks that InfluxDB holds
exactly ``2 x messages`` values afterwards.

    .venv/bin/python -m lingtan_tools.bench.mqtt_backlog --messages 200000 --mode backlog
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from lingtan.influxdb import InfluxClient
from lingtan.park.model import Park, Protocol
from lingtan.settings import Settings
from lingtan_collectors.common.runtime import CollectorRuntime
from lingtan_collectors.mqtt.collector import MqttCollector
from lingtan_tools.stack.services import LocalInflux, LocalMosquitto, free_port

T0_MS = 1714521600000


def bench_park(meters: int) -> Park:
    """One MQTT device, ``meters`` meters on topics ``bench/m<i>`` with a counter and a rate each."""
    ms = [{"id": f"m{i}", "name": "m", "carrier": "electricity", "device": "gw", "points": [
        {"id": f"m{i}.total", "kind": "counter", "unit": "kWh", "role": "consumption",
         "mqtt": {"topic": f"bench/m{i}", "json_path": "energy.total"}},
        {"id": f"m{i}.rate", "kind": "rate", "unit": "kW", "role": "consumption",
         "mqtt": {"topic": f"bench/m{i}", "json_path": "power.value"}}]} for i in range(meters)]
    return Park.model_validate({
        "park": {"id": "bench", "name": "bench", "province": "江苏", "grid_region": "east_china",
                 "location": {"latitude": 31.5, "longitude": 120.3}},
        "devices": [{"id": "gw", "protocol": "mqtt"}],
        "enterprises": [{"id": "e1", "name": "bench", "credit_code": "91320214MA20UA001F", "industry_code": "C3971",
                         "units": [{"id": "u1", "name": "u", "meters": ms}]}],
    })


def publish(port: int, meters: int, first: int, count: int, stride: int) -> None:
    """Publish messages ``first, first+stride, ...`` (``count`` of them), QoS 1, round-robin over meters."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{first}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    info = None
    for k in range(count):
        n = first + k * stride
        body = json.dumps({"ts": T0_MS + n, "energy": {"total": float(n)}, "power": {"value": float(n % 1000)}})
        info = client.publish(f"bench/m{n % meters}", body, qos=1)
        if k % 20_000 == 19_999:  # paho's message ids wrap at 65535: keep fewer than that outstanding
            info.wait_for_publish(120)
    if info is not None:
        info.wait_for_publish(120)
    client.disconnect()
    client.loop_stop()


def run(args: argparse.Namespace, tmp: Path) -> None:
    """Run one benchmark with the servers started in ``tmp``."""
    influx = LocalInflux(tmp / "influx-state", free_port())
    broker = LocalMosquitto(tmp / "mqtt-state", free_port(), autosave_interval=60)
    influx.start()
    broker.start()
    try:
        InfluxClient(influx.url, "").query("CREATE USER bench WITH PASSWORD 'bench' WITH ALL PRIVILEGES", database="")
        db = InfluxClient(influx.url, "bench", "bench", "bench")
        db.query("CREATE DATABASE bench", database="")
        park = bench_park(args.meters)
        settings = Settings(state_dir=tmp / "state", influx_url=influx.url, influx_db="bench", influx_user="bench",
                            influx_password="bench", mqtt_port=broker.port)
        ctx = mp.get_context("spawn")
        per = args.messages // args.publishers
        procs = [ctx.Process(target=publish, args=(broker.port, args.meters, i, per, args.publishers))
                 for i in range(args.publishers)]
        total = per * args.publishers
        if args.mode == "backlog":
            _fill_offline_session(park, settings, procs, total)
        runtime = CollectorRuntime("mqtt-bench", Protocol.mqtt, park, settings).start()
        base_written = runtime.sink.stats.written
        collector = MqttCollector(runtime)
        stop = threading.Event()
        t0, cpu0 = time.monotonic(), time.process_time()
        worker = threading.Thread(target=collector.run, args=(stop,))
        worker.start()
        if args.mode == "live":
            for p in procs:
                p.start()
        stats = collector.devices[0].stats
        _wait_until_acked(stats, total, runtime, base_written, t0)
        t_acked = time.monotonic() - t0
        runtime.sink.flush(120)
        t_written = time.monotonic() - t0
        cpu = time.process_time() - cpu0
        stop.set()
        worker.join()
        runtime.stop()
        for p in procs:
            p.join()
        _report(args.mode, stats, total, t_acked, t_written, cpu, _stored_values(db))
    finally:
        broker.stop()
        influx.stop()


def _fill_offline_session(park: Park, settings: Settings, procs: list[Any], total: int) -> None:
    """Let a collector create its persistent session and go away, then run the publishers into its queue."""
    first = CollectorRuntime("mqtt-bench", Protocol.mqtt, park, settings).start()
    stop = threading.Event()
    threading.Timer(2.0, stop.set).start()
    MqttCollector(first).run(stop)  # creates the persistent session and subscriptions
    first.stop()
    t_pub = time.monotonic()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"publisher failed with exit code {p.exitcode}")
    print(f"published {total} messages for the offline session in {time.monotonic() - t_pub:.1f}s")


def _wait_until_acked(stats: Any, total: int, runtime: CollectorRuntime, base_written: int, t0: float) -> None:
    """Wait (300 s at most) until ``total`` messages are acked, printing progress every second."""
    deadline = time.monotonic() + 300
    last = (t0, 0)
    while stats.acked < total and time.monotonic() < deadline:
        time.sleep(0.02)
        now = time.monotonic()
        if now - last[0] >= 1.0:
            print(f"  {now - t0:5.1f}s acked {stats.acked} ({(stats.acked - last[1]) / (now - last[0]):,.0f}/s), "
                  f"written lines {runtime.sink.stats.written - base_written}")
            last = (now, stats.acked)


def _stored_values(db: InfluxClient) -> int:
    """Values (counter and rate) of the bench meters held in InfluxDB."""
    rows = db.rows('SELECT count("total") AS t, count("rate") AS r FROM "electricity"')
    return (rows[0]["t"] + rows[0]["r"]) if rows else 0


def _report(mode: str, stats: Any, total: int, t_acked: float, t_written: float, cpu: float, stored: int) -> None:
    """Print the ack and write rates, the values stored against those expected, and collector CPU per message."""
    print(f"{mode}: {stats.acked} of {total} messages acked in {t_acked:.2f}s "
          f"({stats.acked / t_acked:,.0f} msg/s); all lines in InfluxDB after {t_written:.2f}s "
          f"({total / t_written:,.0f} msg/s, {2 * total / t_written:,.0f} values/s)")
    print(f"InfluxDB holds {stored} values (expected {2 * total}); batches {stats.batches} "
          f"(avg {stats.acked / max(stats.batches, 1):.0f} msg), redelivered {stats.redelivered}; "
          f"collector CPU {cpu:.1f}s = {cpu / max(total, 1) * 1e6:.0f} us/msg")


def main() -> None:
    """Parse arguments and run the benchmark in a temporary directory."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--meters", type=int, default=82)
    ap.add_argument("--publishers", type=int, default=2)
    ap.add_argument("--mode", choices=["backlog", "live"], default="backlog")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mqtt-bench-") as tmp:
        run(args, Path(tmp))


if __name__ == "__main__":
    main()
