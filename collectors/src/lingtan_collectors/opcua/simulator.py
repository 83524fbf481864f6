"""OPC UA server for the park's OPC UA devices (asyncua 2.1).

One server per endpoint. Each device registers its ``namespace_uri`` (the first gets
``ns=2``: index 0 is OPC UA, 1 the server's own URI), each meter is an object and each
point a Double variable with the string NodeId from the park model (``ns=2;s=m-pv-01.Rate``).
Every tick each variable gets a ``DataValue`` whose SourceTimestamp is the simulated time
and ServerTimestamp the wall-clock time. Every variable is historized in memory (the last
``history_count`` values, asyncua's ``HistoryDict``), so a collector can back-fill a gap
with HistoryRead (raw, by SourceTimestamp = simulated time).

Security: the demo server offers only ``NoSecurity`` on loopback. A production OPC UA
server should offer ``Basic256Sha256`` (Sign / SignAndEncrypt) with an application
instance certificate and user authentication, and the collector should use it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass

from asyncua import Server, ua
from asyncua.server.history import HistoryStorageInterface

from lingtan.park.index import PointRef
from lingtan_collectors.common import codec
from lingtan_collectors.common.simulation import (
    EmissionSink,
    FaultKind,
    FaultSource,
    ValueSource,
    value_record,
)
from lingtan_collectors.opcua.model import OpcUaDevice

log = logging.getLogger(__name__)

BAD_STATUS: dict[FaultKind, int] = {
    FaultKind.opcua_bad_sensor: ua.StatusCodes.BadSensorFailure,
    FaultKind.opcua_comm_error: ua.StatusCodes.BadCommunicationError,
}
BAD_KINDS = tuple(BAD_STATUS)
GOOD = ua.StatusCode(ua.StatusCodes.Good)
NULL = ua.Variant(None, ua.VariantType.Null)


async def enable_history(server: Server, nodeid: ua.NodeId, count: int) -> None:
    """Mark a variable as historizing and give it a slot in the server's history storage.

    The caller then stores every value it writes with ``storage.save_node_value``. This is
    what ``Server.historize_node_data_change`` arranges through an internal subscription;
    feeding the storage directly skips a deep copy and a task per value, which makes
    historized writes about 5x faster (see :mod:`lingtan_tools.simulate.load`). HistoryRead is
    served by asyncua's history manager from the same in-memory ``HistoryDict``.
    """
    node = server.get_node(nodeid)
    await node.write_attribute(ua.AttributeIds.Historizing, ua.DataValue(True))
    await node.set_attr_bit(ua.AttributeIds.AccessLevel, ua.AccessLevel.HistoryRead)
    await node.set_attr_bit(ua.AttributeIds.UserAccessLevel, ua.AccessLevel.HistoryRead)
    await server.iserver.history_manager.storage.new_historized_node(nodeid, None, count)


@dataclass
class _Var:
    ref: PointRef
    nodeid: ua.NodeId
    index: int  # position in ValueSource.refs


def parse_node_id(text: str, default_ns: int) -> ua.NodeId:
    """NodeId of a point binding; a NodeId without ``ns=`` lives in the device's namespace."""
    nid = ua.NodeId.from_string(text)
    if not text.startswith("ns="):
        nid = ua.NodeId(nid.Identifier, default_ns, nid.NodeIdType)
    return nid


class OpcUaSimServer:
    """Serves the points of one or more OPC UA devices at ``endpoint``.

    Parameters
    ----------
    endpoint : str
        ``opc.tcp://host:port[/path]``.
    devices : list of OpcUaDevice
        Devices served here; their namespaces are registered in this order.
    refs : list of PointRef
        All points of the park (those of other devices are ignored).
    history_count : int
        Values kept per variable for HistoryRead.
    """

    def __init__(self, endpoint: str, devices: list[OpcUaDevice], refs: list[PointRef], *, history_count: int = 3600) -> None:
        self.endpoint = endpoint
        self.devices = devices
        self.history_count = history_count
        ids = {d.id for d in devices}
        self.refs = [(i, r) for i, r in enumerate(refs) if r.device_id in ids and r.point.opcua is not None]
        self.server = Server()
        self.vars: list[_Var] = []
        self.namespaces: dict[str, int] = {}
        self._started = False

    @property
    def history(self) -> HistoryStorageInterface:
        return self.server.iserver.history_manager.storage

    async def start(self) -> None:
        """Build the address space, enable history and start listening."""
        server = self.server
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("Lingtan demo park simulator")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        for device in self.devices:
            self.namespaces[device.id] = await server.register_namespace(device.namespace_uri)
        objects: dict[str, object] = {}
        seen: set[ua.NodeId] = set()
        for index, ref in self.refs:
            assert ref.point.opcua is not None
            ns = self.namespaces[ref.device_id]
            nid = parse_node_id(ref.point.opcua.node_id, ns)
            if nid.NamespaceIndex != ns:
                raise ValueError(
                    f"point {ref.id}: node id {ref.point.opcua.node_id} is in namespace {nid.NamespaceIndex}, "
                    f"but device {ref.device_id} ({ref_uri(self.devices, ref.device_id)}) was registered as ns={ns}"
                )
            if nid in seen:
                raise ValueError(f"point {ref.id}: node id {ref.point.opcua.node_id} is used twice")
            seen.add(nid)
            obj = objects.get(ref.meter.id)
            if obj is None:
                obj = await server.nodes.objects.add_object(ua.NodeId(f"{ref.meter.id}", ns), ua.QualifiedName(ref.meter.id, ns))
                objects[ref.meter.id] = obj
            name = str(nid.Identifier)
            browse = name[len(ref.meter.id) + 1 :] if name.startswith(ref.meter.id + ".") else name
            var = await obj.add_variable(nid, ua.QualifiedName(browse, ns), 0.0, varianttype=ua.VariantType.Double)  # type: ignore[attr-defined]
            await var.write_attribute(ua.AttributeIds.Description, ua.DataValue(ua.Variant(ua.LocalizedText(f"{ref.id} [{ref.point.unit}]"))))
            await enable_history(server, var.nodeid, self.history_count)
            self.vars.append(_Var(ref, nid, index))
        await server.start()
        self._started = True
        log.info("OPC UA server at %s with %d variables", self.endpoint, len(self.vars))

    async def publish(self, engine: ValueSource, faults: FaultSource, tick: int, emit: EmissionSink) -> int:
        """Write this tick's values; returns the number of good values written."""
        src = engine.time_at(tick)
        now = dt.datetime.now(dt.UTC)
        ts_ms = engine.ts_ms(tick)
        records = []
        good = 0
        for v in self.vars:
            pid = v.ref.id
            if faults.active(FaultKind.silent, pid, tick):
                continue
            bad = faults.first_active(BAD_KINDS, pid, tick)
            canonical = float(engine.values[v.index])
            wire = float(codec.to_wire(v.ref, canonical))
            if bad is not None:
                dv = ua.DataValue(
                    ua.Variant(wire, ua.VariantType.Double), StatusCode=ua.StatusCode(BAD_STATUS[bad]),
                    SourceTimestamp=src, ServerTimestamp=now,
                )
            else:
                dv = ua.DataValue(ua.Variant(wire, ua.VariantType.Double), StatusCode=GOOD, SourceTimestamp=src, ServerTimestamp=now)
            await self.server.write_attribute_value(v.nodeid, dv)
            await self.history.save_node_value(v.nodeid, dv if bad is None else dataclasses.replace(dv, Value=NULL))
            good += bad is None
            if bad is None and emit.enabled:
                unwrapped = canonical if engine.is_counter[v.index] else None
                records.append(value_record("opcua", pid, ts_ms, codec.wire_to_canonical(v.ref, wire), wire, unwrapped))
        emit.write(records)
        return good

    async def stop(self) -> None:
        if self._started:
            self._started = False
            await self.server.stop()


def ref_uri(devices: list[OpcUaDevice], device_id: str) -> str:
    return next((d.namespace_uri for d in devices if d.id == device_id), "?")
