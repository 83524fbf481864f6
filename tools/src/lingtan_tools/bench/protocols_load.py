"""Load generators for the end-to-end protocol benchmarks, each run as its own process.

``python -m lingtan_tools.bench.protocols_load mqtt --port P --prefix bench/run1 --topics 0:1040 --rate 10400 --report F``
    publishes QoS 1 JSON messages ``{"ts": <epoch ms now>, "energy": {"total": x},
    "power": {"value": y}}`` round-robin to topics ``<prefix>/m<i>`` (MQTT 3.1.1 on the wire, see
    :mod:`lingtan_tools.bench.mqtt_wire`), paced per 100 ms.

``python -m lingtan_tools.bench.protocols_load opcua --port P --nodes 2500 --rate 5200 --report F``
    serves ``--nodes`` Double variables ``ns=<urn:lingtan:bench-load>;s=load.<i>`` (asyncua) and
    writes ``--rate`` value changes per second round-robin, SourceTimestamp = now, paced per 50 ms.

Both print ``ready`` on stdout once they accept connections, generate load until SIGTERM,
then write a JSON report to ``--report``: ``{"per_second": {"<epoch s>": n, ...}, "total": n,
"max_behind_s": s, "ack_delays": [[epoch s, delay s], ...]}`` counting the values by the second of
their own timestamp, so the benchmark can tell what was offered in its measurement window.
``max_behind_s`` is how far the generator fell behind its schedule at worst (a CPU-starved
generator offers less than asked); ``ack_delays`` (MQTT only) samples how long 1 % of the
messages waited from ``publish()`` to the broker's PUBACK, i.e. queued in the "device".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

#: namespace of the OPC UA load server's variables
OPCUA_NAMESPACE = "urn:lingtan:bench-load"
#: variables per OPC UA object (asyncua adds children in O(siblings): keep objects small, like meters)
NODES_PER_OBJECT = 100
#: QoS 1 messages the MQTT load generator keeps unacknowledged at most; see :func:`run_mqtt`
MQTT_INFLIGHT = 2000
MQTT_TICK_S = 0.1
OPCUA_TICK_S = 0.05


def mqtt_topic(prefix: str, i: int) -> str:
    """Topic of meter ``i`` (shared with the benchmark's park model)."""
    return f"{prefix}/m{i}"


def opcua_node(i: int) -> str:
    """String identifier of variable ``i`` on the OPC UA load server."""
    return f"load.{i}"


class _Report:
    """Values generated per second of their timestamp, the worst lag behind schedule and, for MQTT,
    a sample of PUBACK delays (publish() call to the broker's acknowledgement)."""

    def __init__(self, path: Path):
        self.path = path
        self.per_second: Counter[int] = Counter()
        self.max_behind_s = 0.0
        self.ack_delays: list[tuple[int, float]] = []  # (epoch s of the message, delay [s])

    def behind(self, seconds: float) -> None:
        """Note that the generator is ``seconds`` behind its schedule (negative: ahead)."""
        self.max_behind_s = max(self.max_behind_s, seconds)

    def write(self) -> None:
        """Write the report atomically to :attr:`path`."""
        data = {"per_second": {str(k): v for k, v in sorted(self.per_second.items())},
                "total": sum(self.per_second.values()), "max_behind_s": round(self.max_behind_s, 3),
                "ack_delays": [[s, round(d, 4)] for s, d in self.ack_delays]}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.path)


def _stop_event() -> threading.Event:
    """An event set by SIGTERM or SIGINT."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


# --------------------------------------------------------------------------- MQTT


def run_mqtt(port: int, prefix: str, first: int, count: int, rate: float, report: _Report,
             stop: threading.Event) -> None:
    """Publish ``rate`` messages/s round-robin to topics ``first .. first+count-1`` until ``stop``.

    Every 100 ms the messages due by then are published (a generator that fell behind catches
    up). Each topic's timestamps strictly increase, so no two messages of a series share an
    InfluxDB timestamp. At most :data:`MQTT_INFLIGHT` messages are unacknowledged, like a
    device with a bounded send queue. The publisher is :class:`~lingtan_tools.bench.mqtt_wire.LeanPublisher`
    (QoS 1 on the wire, one socket write per tick) because paho's per-message cost made the
    generator, not the system under test, the bottleneck on a small machine.
    """
    from lingtan_tools.bench.mqtt_wire import LeanPublisher, publish_qos1, topic_field

    client = LeanPublisher("127.0.0.1", port, f"lingtan-bench-pub-{first}", window=MQTT_INFLIGHT)
    # PUBACK delays of every message whose packet id is a multiple of 100
    published_at: dict[int, tuple[float, int]] = {}  # packet id -> (monotonic publish time, epoch s)

    def on_ack(packet_id: int, t_ack: float) -> None:
        sent = published_at.pop(packet_id, None)
        if sent is not None:
            report.ack_delays.append((sent[1], t_ack - sent[0]))

    client.on_ack = on_ack
    try:
        print("ready", flush=True)
        topics = [topic_field(mqtt_topic(prefix, first + i)) for i in range(count)]
        last_ts = [0] * count
        totals = [0] * count
        per_second = report.per_second
        next_id = client.next_packet_id
        k = sent = 0
        start = time.monotonic()
        while not stop.is_set():
            due = int(rate * (time.monotonic() - start + MQTT_TICK_S))
            packets = []
            now_ms = time.time_ns() // 1_000_000
            t_pub = time.monotonic()
            for _ in range(due - sent):
                i = k % count
                k += 1
                ts = max(now_ms, last_ts[i] + 1)
                last_ts[i] = ts
                totals[i] += 1
                payload = (f'{{"ts": {ts}, "energy": {{"total": {totals[i]}.0}}, '
                           f'"power": {{"value": {50 + k % 100 / 10:.1f}}}}}').encode()
                packet_id = next_id()
                if packet_id % 100 == 0:
                    published_at[packet_id] = (t_pub, ts // 1000)
                packets.append(publish_qos1(topics[i], packet_id, payload))
                per_second[ts // 1000] += 1
            client.publish_many(packets, stop)
            sent = max(sent, due)
            tick = start + (sent / rate) if rate > 0 else time.monotonic() + MQTT_TICK_S
            report.behind(time.monotonic() - tick)
            stop.wait(max(0.0, tick - time.monotonic()))
    finally:
        client.close()


# --------------------------------------------------------------------------- OPC UA


def _lean_server() -> None:
    """Skip the deep copy asyncua's server makes of every written value per monitored item.

    Load generator only (the same trick as ``tools/src/lingtan_tools/bench/opcua_subscribe.py --lean``): the copy
    guards against a caller mutating a DataValue after writing it, which this generator never
    does; it costs the server ~100 us per change and caps one process at a few thousand
    changes/s. Nothing on the wire or in the collector changes.
    """
    from asyncua.server import monitored_item_service as mis

    def set_current_datavalue(self: mis.MonitoredItemValues, cur_val: object) -> None:
        self.old_dvalue, self.current_dvalue = self.current_dvalue, cur_val

    mis.MonitoredItemValues.set_current_datavalue = set_current_datavalue  # type: ignore[method-assign,assignment]


async def run_opcua(port: int, nodes: int, rate: float, report: _Report, stop: threading.Event) -> None:
    """Serve ``nodes`` variables on ``port`` and change ``rate`` of them per second until ``stop``."""
    from asyncua import Server, ua

    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    idx = await server.register_namespace(OPCUA_NAMESPACE)
    ids = []
    folder = server.nodes.objects
    for i in range(nodes):
        if i % NODES_PER_OBJECT == 0:
            name = f"meter{i // NODES_PER_OBJECT}"
            folder = await server.nodes.objects.add_object(ua.NodeId(name, idx), ua.QualifiedName(name, idx))
        var = await folder.add_variable(ua.NodeId(opcua_node(i), idx), ua.QualifiedName(f"v{i}", idx), 0.0,
                                        varianttype=ua.VariantType.Double)
        ids.append(var.nodeid)
    good = ua.StatusCode(ua.StatusCodes.Good)
    write = server.write_attribute_value
    per_second = report.per_second
    async with server:
        print("ready", flush=True)
        n = written = 0
        last = datetime.now(UTC)
        start = time.monotonic()
        while not stop.is_set():
            due = int(rate * (time.monotonic() - start + OPCUA_TICK_S))
            while written < due:
                # one SourceTimestamp per batch, and a batch changes each variable at most once, so no
                # two values of a series share a timestamp (even when catching up after falling behind)
                batch = min(due - written, nodes)
                now = max(datetime.now(UTC), last + timedelta(microseconds=1))
                last = now
                for _ in range(batch):
                    dv = ua.DataValue(ua.Variant(float(n), ua.VariantType.Double), StatusCode=good,
                                      SourceTimestamp=now, ServerTimestamp=now)
                    await write(ids[n % nodes], dv)
                    n += 1
                per_second[int(now.timestamp())] += batch
                written += batch
            tick = start + written / rate if rate > 0 else time.monotonic() + OPCUA_TICK_S
            report.behind(time.monotonic() - tick)
            await asyncio.sleep(max(0.0, tick - time.monotonic()))


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run one load generator until SIGTERM."""
    ap = argparse.ArgumentParser(prog="python -m lingtan_tools.bench.protocols_load", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="protocol", required=True)
    m = sub.add_parser("mqtt", help="QoS 1 publisher")
    m.add_argument("--port", type=int, required=True)
    m.add_argument("--prefix", default="bench", help="topics are PREFIX/m<i>")
    m.add_argument("--topics", required=True, help="FIRST:COUNT, e.g. 0:1040 for PREFIX/m0 .. PREFIX/m1039")
    o = sub.add_parser("opcua", help="asyncua server whose variables change")
    o.add_argument("--port", type=int, required=True)
    o.add_argument("--nodes", type=int, required=True)
    o.add_argument("--lean", action="store_true", help="skip the server's per-item deep copy (see _lean_server)")
    for p in (m, o):
        p.add_argument("--rate", type=float, required=True, help="values per second")
        p.add_argument("--report", type=Path, required=True, help="JSON report written on SIGTERM")
    args = ap.parse_args(argv)
    report = _Report(args.report)
    stop = _stop_event()
    try:
        if args.protocol == "mqtt":
            first, count = (int(x) for x in args.topics.split(":"))
            run_mqtt(args.port, args.prefix, first, count, args.rate, report, stop)
        else:
            if args.lean:
                _lean_server()
            asyncio.run(run_opcua(args.port, args.nodes, args.rate, report, stop))
    finally:
        report.write()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
