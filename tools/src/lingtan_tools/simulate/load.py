"""OPC UA write-load benchmark: how many value changes per second the simulator's server sustains.

``asyncio.run(run_opcua_load("opc.tcp://127.0.0.1:48400", n_nodes=20_000, rate_per_s=20_000, duration_s=10))``
starts an asyncua server with ``n_nodes`` Double variables, writes ``rate_per_s`` value
changes per second round-robin (the same ``write_attribute_value`` path the park server
uses, with SourceTimestamp and ServerTimestamp) and reports the rate achieved. Optionally
every variable is historized and/or one asyncua client subscribes to all of them and
counts the notifications it receives. Everything runs on loopback and stops by itself.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass
from typing import Any, Literal

from asyncua import Client, Node, Server, ua

from lingtan_collectors.opcua.simulator import enable_history

GOOD = ua.StatusCode(ua.StatusCodes.Good)
NODES_PER_OBJECT = 100


@dataclass(frozen=True)
class LoadResult:
    n_nodes: int
    target_rate_per_s: float
    duration_s: float
    writes: int
    elapsed_s: float
    history: str | None
    notifications: int | None  # received by the subscribing client, if any

    @property
    def writes_per_s(self) -> float:
        return self.writes / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def kept_up(self) -> bool:
        """Whether the achieved rate reached 95 % of the target."""
        return self.writes_per_s >= 0.95 * self.target_rate_per_s


class _Counter:
    def __init__(self) -> None:
        self.n = 0

    def datachange_notification(self, node: object, val: object, data: object) -> None:
        self.n += 1


async def run_opcua_load(
    endpoint: str,
    n_nodes: int,
    rate_per_s: float,
    duration_s: float,
    *,
    history: Literal["direct", "subscription"] | None = None,
    history_count: int = 100,
    subscribe: bool = False,
    interval_s: float = 0.05,
) -> LoadResult:
    """Write ``rate_per_s`` value changes per second to ``n_nodes`` variables for ``duration_s``.

    Parameters
    ----------
    endpoint : str
        Where the benchmark server listens (loopback), ``opc.tcp://127.0.0.1:PORT``.
    n_nodes : int
        Number of Double variables.
    rate_per_s : float
        Target value changes per second, spread over batches every ``interval_s``.
    duration_s : float
        Length of the measurement [s].
    history : {'direct', 'subscription'}, optional
        Historize every variable in memory (``history_count`` values each): 'direct' feeds
        the history storage from the write path as the park server does, 'subscription'
        uses asyncua's ``historize_node_data_change`` (an internal subscription).
    subscribe : bool
        Connect one client subscribing to every variable (publishing interval 500 ms).
    """
    server, nodes = await _load_server(endpoint, n_nodes)
    nodeids = [n.nodeid for n in nodes]
    await _historize(server, nodes, history, history_count)
    storage = server.iserver.history_manager.storage
    client: Client | None = None
    counter = _Counter()
    async with server:
        if subscribe:
            client = await _subscribe_all(endpoint, nodeids, counter)
        try:
            writes, elapsed = await _write_load(server, storage, nodeids, rate_per_s, duration_s, interval_s,
                                                direct_history=history == "direct")
            if client is not None:
                await asyncio.sleep(1.0)  # let the last publish arrive
        finally:
            if client is not None:
                await client.disconnect()
    return LoadResult(n_nodes, rate_per_s, duration_s, writes, elapsed, history, counter.n if subscribe else None)


async def _load_server(endpoint: str, n_nodes: int) -> tuple[Server, list[Node]]:
    """An initialised (not yet started) server with ``n_nodes`` Double variables, in objects of NODES_PER_OBJECT."""
    server = Server()
    await server.init()
    server.set_endpoint(endpoint)
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    idx = await server.register_namespace("urn:lingtan:load")
    nodes = []
    for i in range(n_nodes):
        if i % NODES_PER_OBJECT == 0:  # asyncua adds children in O(siblings): keep objects small, like meters
            name = f"meter{i // NODES_PER_OBJECT}"
            folder = await server.nodes.objects.add_object(ua.NodeId(name, idx), ua.QualifiedName(name, idx))
        nodes.append(await folder.add_variable(ua.NodeId(f"load.{i}", idx), ua.QualifiedName(f"v{i}", idx), 0.0, varianttype=ua.VariantType.Double))
    return server, nodes


async def _historize(
    server: Server, nodes: list[Node], history: Literal["direct", "subscription"] | None, history_count: int
) -> None:
    """Keep ``history_count`` values of every variable in memory, the way ``history`` says (or not at all)."""
    if history == "subscription":
        for node in nodes:
            await server.historize_node_data_change(node, period=None, count=history_count)
    elif history == "direct":
        for node in nodes:
            await enable_history(server, node.nodeid, history_count)


async def _subscribe_all(endpoint: str, nodeids: list[ua.NodeId], counter: _Counter) -> Client:
    """Connect a client subscribing to every variable (500 ms publishing, queue size 1), counting into ``counter``."""
    client = Client(endpoint)
    await client.connect()
    sub = await client.create_subscription(500, counter)
    for i in range(0, len(nodeids), 1000):
        await sub.subscribe_data_change([client.get_node(nid) for nid in nodeids[i : i + 1000]], queuesize=1)
    return client


async def _write_load(
    server: Server, storage: Any, nodeids: list[ua.NodeId], rate_per_s: float, duration_s: float, interval_s: float,
    *, direct_history: bool,
) -> tuple[int, float]:
    """Write round-robin batches every ``interval_s`` for ``duration_s``; returns (writes, elapsed [s])."""
    n_nodes = len(nodeids)
    writes = 0
    per_batch = max(1, round(rate_per_s * interval_s))
    t0 = time.perf_counter()
    k = 0
    while time.perf_counter() - t0 < duration_s:
        now = dt.datetime.now(dt.UTC)
        for _ in range(per_batch):
            dv = ua.DataValue(ua.Variant(float(writes), ua.VariantType.Double), StatusCode=GOOD, SourceTimestamp=now, ServerTimestamp=now)
            nid = nodeids[writes % n_nodes]
            await server.write_attribute_value(nid, dv)
            if direct_history:
                await storage.save_node_value(nid, dv)
            writes += 1
        k += 1
        delay = t0 + k * interval_s - time.perf_counter()
        await asyncio.sleep(max(0.0, delay))
    return writes, time.perf_counter() - t0


def main() -> None:  # pragma: no cover - manual benchmark
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoint", default="opc.tcp://127.0.0.1:48400")
    ap.add_argument("--nodes", type=int, default=20_000)
    ap.add_argument("--rate", type=float, default=20_000)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--history", choices=["direct", "subscription"])
    ap.add_argument("--subscribe", action="store_true")
    a = ap.parse_args()
    r = asyncio.run(run_opcua_load(a.endpoint, a.nodes, a.rate, a.duration, history=a.history, subscribe=a.subscribe))
    print(f"{r.n_nodes} nodes, history {r.history}: {r.writes} writes in {r.elapsed_s:.2f} s = {r.writes_per_s:,.0f}/s (target {r.target_rate_per_s:,.0f}/s, "
          f"{'kept up' if r.kept_up else 'fell behind'}), notifications {r.notifications}")


if __name__ == "__main__":  # pragma: no cover
    main()
