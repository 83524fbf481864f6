"""The ``inputs.opcua_listener`` fragment of telegraf.conf for one OPC UA device (docs/telegraf.md)."""

from __future__ import annotations

from collections import defaultdict

from lingtan.park.index import PointRef
from lingtan.park.model import Park
from lingtan.series import point_field
from lingtan.settings import Settings
from lingtan_collectors.common.telegraf import _duration, _kv, _tags
from lingtan_collectors.opcua.model import OpcUaDevice

#: tags that ``inputs.opcua_listener`` adds itself and the fragment removes with tagexclude
PLUGIN_TAGS = ("id",)
#: the value of the OPC UA ``Quality`` field for a good reading (StatusOK)
OPCUA_GOOD = "OK (0x0)"
#: monitored-item settings of the OPC UA collector (collectors/src/lingtan_collectors/opcua/collector.py: sampling
#: interval 0 = as fast as the server samples, a server-side queue of 1000 values per item)
OPCUA_MONITORING = {"sampling_interval": "0s", "queue_size": 1000, "discard_oldest": True}


def _parse_node_id(node_id: str) -> tuple[str, str]:
    """``ns=2;s=Foo`` -> ("s", "Foo"): identifier type and identifier; the index is dropped."""
    if node_id.startswith("ns="):
        node_id = node_id.split(";", 1)[1]
    id_type, identifier = node_id.split("=", 1)
    return id_type, identifier


def _cel_quality_good() -> str:
    return f'fields.Quality == "{OPCUA_GOOD}"'


def telegraf_inputs(device: OpcUaDevice, refs: list[PointRef], park: Park, settings: Settings) -> list[str]:
    """One ``inputs.opcua_listener`` per connection of ``device`` (max_nodes_per_connection nodes each)."""
    lines: list[str] = []
    step = device.max_nodes_per_connection
    chunks = [refs[i:i + step] for i in range(0, len(refs), step)]
    interval = _duration(device.publishing_interval_ms / 1000)
    for n, chunk in enumerate(chunks, 1):
        lines += [
            f"# OPC UA device {device.id}: subscription (not polling), connection {n} of {len(chunks)}",
            f"# (max_nodes_per_connection = {device.max_nodes_per_connection}).",
            "# Mapping: one group per carrier, group name = measurement; one node per point,",
            "# node name = field (total/rate), default_tags = the point's tags. Nodes are addressed",
            "# by the device's namespace URI, as the collector does: it resolves the URI to the",
            "# server's current index and ignores any ns= in the park file. The plugin adds",
            "# an `id` tag and a `Quality` field, both removed below; readings whose status is not",
            "# Good are dropped (metricpass), as the collectors drop them (data_quality bad_status).",
            "# Monitoring: sampling interval 0 and a queue of 1000 values per node, as the collector.",
            "[[inputs.opcua_listener]]",
            *_kv(2, name="opcua_listener", endpoint=device.endpoint or settings.opcua_endpoint,
                 connect_timeout="10s", request_timeout="5s", subscription_interval=interval,
                 security_policy="None", security_mode="None", auth_method="Anonymous",
                 timestamp="source"),
            f"  metricpass = '{_cel_quality_good()}'",
            *_kv(2, fieldexclude=["Quality"], tagexclude=list(PLUGIN_TAGS)),
        ]
        by_carrier: dict[str, list[PointRef]] = defaultdict(list)
        for ref in chunk:
            by_carrier[ref.carrier.value].append(ref)
        for carrier in sorted(by_carrier):
            lines += [
                "  [[inputs.opcua_listener.group]]",
                *_kv(4, name=carrier),
            ]
            for ref in by_carrier[carrier]:
                assert ref.point.opcua is not None
                id_type, identifier = _parse_node_id(ref.point.opcua.node_id)
                lines += [
                    f"    # point {ref.id}",
                    "    [[inputs.opcua_listener.group.nodes]]",
                    *_kv(6, name=point_field(ref), namespace_uri=device.namespace_uri, identifier_type=id_type,
                         identifier=identifier, default_tags=_tags(ref, PLUGIN_TAGS), monitoring_params=OPCUA_MONITORING),
                ]
        lines.append("")
    return lines
