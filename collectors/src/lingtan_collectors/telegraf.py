"""``lingtan telegraf-config``: a Telegraf configuration that writes the Lingtan schema.

Telegraf is the alternative to the Python collectors (``lingtan collect``). The file
generated here makes Telegraf write exactly the series the Python collectors write:
measurement = carrier, the tags of :func:`lingtan.series.point_tags` and one field,
``total`` or ``rate`` (:func:`lingtan.series.point_field`), in the canonical unit
``(raw * scale + offset) * unit factor``. tests/test_telegraf.py rebuilds every point's
series from the generated TOML and compares it with :func:`lingtan.series.series_key`.
docs/telegraf.md explains the mapping; the option names were checked against the
plugin sources and sample.conf files on influxdata/telegraf master:

* ``inputs.opcua_listener`` (plugins/common/opcua/input/input_client.go): a metric per
  node, named after the node's group (else the plugin ``name``), tags = ``id`` (the
  node id) + group/node ``default_tags``, fields = node ``name`` + ``Quality``.
  Node settings: ``name``, ``namespace`` or ``namespace_uri`` (Telegraf 1.37,
  influxdata/telegraf#17906), ``identifier_type``, ``identifier``, ``default_tags``.
* ``inputs.modbus`` request style (plugins/inputs/modbus/configuration_request.go):
  request keys ``slave_id``, ``byte_order`` (ABCD, DCBA, BADC, CDAB), ``register``,
  ``measurement``, ``fields``, ``tags``; field keys ``address``, ``name``, ``type``,
  ``scale``, ``output``. There is no ``offset``. Values are ``float64(raw) * scale``.
  Metrics carry the extra tags ``name`` (plugin name), ``slave_id`` and ``type``.
  Duplicate-field detection includes the request tags, so one request per point with
  its own ``point`` tag is accepted.
* ``inputs.mqtt_consumer`` + ``json_v2`` parser: ``topic_tag = ""`` suppresses the
  topic tag; json_v2 field keys ``path``, ``rename``, ``type`` (parser.go: DataSet).
* filters (docs/CONFIGURATION.md, models/filter.go): ``metricpass`` (CEL, evaluated
  before the modifiers, so it still sees ``Quality``), ``fieldexclude``/``tagexclude``
  (``fieldexclude`` replaced ``fielddrop`` in Telegraf 1.29).
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict

from lingtan.park.carriers import Carrier
from lingtan.park.index import PointRef, points_by_device
from lingtan.park.model import ModbusDevice, MqttDevice, OpcUaDevice, Park
from lingtan.series import point_field, point_tags
from lingtan.settings import Settings

#: oldest Telegraf release the generated file works with (OPC UA ``namespace_uri`` came in 1.37)
MIN_TELEGRAF = "1.37"
#: tags that each input plugin adds itself and the generated file removes with tagexclude
PLUGIN_TAGS = {"opcua": ("id",), "modbus": ("name", "slave_id", "type"), "mqtt": ()}
#: outage the in-memory buffer must bridge before Telegraf starts dropping the oldest metrics
BUFFER_OUTAGE_S = 900
#: assumed publishing interval of an MQTT point (the park model has none) for buffer sizing
MQTT_ASSUMED_INTERVAL_S = 5.0
#: the value of the OPC UA ``Quality`` field for a good reading (StatusOK)
OPCUA_GOOD = "OK (0x0)"
#: monitored-item settings of the OPC UA collector (collectors/src/lingtan_collectors/opcua/collector.py: sampling
#: interval 0 = as fast as the server samples, a server-side queue of 1000 values per item)
OPCUA_MONITORING = {"sampling_interval": "0s", "queue_size": 1000, "discard_oldest": True}
MODBUS_REGISTER = {3: "holding", 4: "input"}
#: our (word_order, byte_order) -> Telegraf byte_order. word_order "little" = low word first
#: (pymodbus ``word_order="little"`` reverses the registers); byte_order "little" = the two
#: bytes inside each register swapped. Telegraf: ABCD big endian, CDAB = words swapped
#: (binaryLSWBE), BADC = bytes swapped in each word (binaryMSWLE), DCBA = little endian.
#: For 16-bit types Telegraf looks at the byte order only (ABCD/CDAB vs DCBA/BADC).
MODBUS_BYTE_ORDER = {
    ("big", "big"): "ABCD",
    ("little", "big"): "CDAB",
    ("big", "little"): "BADC",
    ("little", "little"): "DCBA",
}
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


# --------------------------------------------------------------------------- TOML output


def _toml_str(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_str(key)


def _toml(value: object) -> str:
    """A TOML value: string, bool, int, finite float, list or inline table."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} cannot be written to the Telegraf configuration")
        return repr(value)
    if isinstance(value, str):
        return _toml_str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _kv(indent: int, **items: object) -> list[str]:
    return [" " * indent + f"{_toml_key(k)} = {_toml(v)}" for k, v in items.items()]


def _duration(seconds: float) -> str:
    """Telegraf duration string: whole seconds as "5s", anything else in milliseconds."""
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{max(1, round(seconds * 1000))}ms"


# --------------------------------------------------------------------------- mapping


def _tags(ref: PointRef) -> dict[str, str]:
    """The point's schema tags, without empty values (which line protocol cannot carry)."""
    tags = {k: v for k, v in sorted(point_tags(ref).items()) if v != ""}
    clash = set(tags) & set(PLUGIN_TAGS[ref.protocol.value])
    if clash:
        raise ValueError(
            f"point {ref.id}: tag(s) {sorted(clash)} collide with tags the Telegraf {ref.protocol.value} "
            "plugin adds itself and the generated configuration removes; rename the point tag"
        )
    return tags


def _is_identity(ref: PointRef) -> bool:
    return ref.point.scale == 1.0 and ref.point.offset == 0.0 and ref.to_canonical == 1.0


def _native_modbus_scale(ref: PointRef) -> bool:
    """True when Telegraf's modbus ``scale`` alone reproduces the point's conversion exactly.

    Telegraf computes ``float64(raw) * scale``; the collectors ``(raw * scale + 0.0) * 1.0``,
    which is the same double when the offset is 0 and the unit factor is 1.
    """
    return ref.point.offset == 0.0 and ref.to_canonical == 1.0


def _needs_starlark(ref: PointRef) -> bool:
    if ref.point.modbus is not None:
        return not _native_modbus_scale(ref)
    return not _is_identity(ref)


def _parse_node_id(node_id: str) -> tuple[str, str]:
    """``ns=2;s=Foo`` -> ("s", "Foo"): identifier type and identifier; the index is dropped."""
    if node_id.startswith("ns="):
        node_id = node_id.split(";", 1)[1]
    id_type, identifier = node_id.split("=", 1)
    return id_type, identifier


def _points_per_second(park: Park) -> float:
    """Upper estimate of readings per second, for the buffer sizing."""
    refs = points_by_device(park)
    rate = 0.0
    for device in park.devices:
        n = len(refs[device.id])
        if isinstance(device, OpcUaDevice):
            rate += n * 1000.0 / device.publishing_interval_ms
        elif isinstance(device, ModbusDevice):
            rate += n / device.poll_interval_s
        else:
            rate += n / MQTT_ASSUMED_INTERVAL_S
    return rate


# --------------------------------------------------------------------------- sections


def _header(park: Park) -> list[str]:
    return [
        f"# Telegraf configuration for park {park.park.id} ({park.park.name}).",
        "# Generated by `lingtan telegraf-config` from the park model: do not edit, regenerate.",
        "# It writes the same measurements, tags and fields as the Python collectors",
        "# (lingtan.series.series_key); see docs/telegraf.md and docs/schema.md.",
        f"# Requires Telegraf >= {MIN_TELEGRAF}. Secrets come from the environment:",
        "# LINGTAN_INFLUX_USER / LINGTAN_INFLUX_PASSWORD (and LINGTAN_MQTT_USERNAME /",
        "# LINGTAN_MQTT_PASSWORD when the broker needs a login).",
        "",
    ]


def _agent(park: Park, settings: Settings) -> list[str]:
    rate = _points_per_second(park)
    per_flush = math.ceil(rate * settings.write_flush_interval_s)
    batch = max(settings.write_batch_size, per_flush)
    buffer = max(10 * batch, math.ceil(rate * BUFFER_OUTAGE_S / 1000) * 1000)
    return [
        "[agent]",
        "  ## Inputs without their own interval (none at present: every plugin below sets one",
        "  ## or is event-driven) are gathered every 10 s.",
        *_kv(2, interval="10s", round_interval=True),
        f"  ## Sizing: about {rate:.0f} readings/s from this park (OPC UA: one per publishing",
        f"  ## interval and node, an upper bound; Modbus: one per poll; MQTT: one per {MQTT_ASSUMED_INTERVAL_S:g} s",
        "  ## assumed). metric_batch_size >= readings per flush, so a flush is one write",
        "  ## (LINGTAN_WRITE_BATCH_SIZE, the collectors' batch size, when larger).",
        f"  ## metric_buffer_limit = readings/s x {BUFFER_OUTAGE_S} s: an InfluxDB outage of that length",
        "  ## loses nothing; beyond it Telegraf drops the oldest metrics (about 1 KB of memory",
        "  ## per buffered metric). For longer outages use the Python collectors (disk buffer).",
        *_kv(2, metric_batch_size=batch, metric_buffer_limit=buffer),
        *_kv(2, collection_jitter="0s", flush_interval=_duration(settings.write_flush_interval_s),
             flush_jitter="0s", precision="0s"),
        "  ## The schema has no host tag.",
        *_kv(2, omit_hostname=True),
        "",
    ]


def _output(settings: Settings) -> list[str]:
    lines = [
        "# InfluxDB v1 write API: works on 1.x, 2.x (DBRP + v1 auth) and 3.x. The database",
        "# and its retention policies come from `lingtan influx init`, not from Telegraf.",
        "[[outputs.influxdb]]",
        *_kv(2, urls=[settings.influx_url], database=settings.influx_db),
        "  ## empty: the database default policy (\"raw\" after `lingtan influx init`)",
        *_kv(2, retention_policy=settings.influx_rp, skip_database_creation=True,
             username="${LINGTAN_INFLUX_USER}", password="${LINGTAN_INFLUX_PASSWORD}",
             content_encoding="gzip", timeout=_duration(settings.influx_timeout_s)),
        "",
    ]
    return lines


def _processors(refs: list[PointRef]) -> list[str]:
    carriers = sorted(c.value for c in Carrier)
    lines = [
        "# Field types: the collectors write every reading as a float. OPC UA integer or",
        "# boolean variables would otherwise arrive as integers and clash with the float",
        "# field in InfluxDB.",
        "[[processors.converter]]",
        *_kv(2, order=1, namepass=carriers),
        "  [processors.converter.fields]",
        *_kv(4, float=["total", "rate"]),
        "",
    ]
    scaled = [r for r in refs if _needs_starlark(r)]
    if not scaled:
        lines += [
            "# Scaling: every point of this park is either already in its canonical unit",
            "# (scale 1, offset 0, unit factor 1) or a Modbus point with offset 0 and unit factor 1,",
            "# which the modbus plugin's own `scale` converts exactly; no scaling processor needed.",
            "",
        ]
        return lines
    table = "\n".join(
        f"    {json.dumps(r.id)}: ({float(r.point.scale)!r}, {float(r.point.offset)!r}, {float(r.to_canonical)!r}),"
        for r in scaled
    )
    source = (
        "# point id -> (scale, offset, unit factor), from the park model\n"
        f"SCALING = {{\n{table}\n}}\n\n"
        "def apply(metric):\n"
        "    # (raw * scale + offset) * factor, in this order, like PointRef.engineering_value\n"
        '    s = SCALING.get(metric.tags.get("point"))\n'
        "    if s == None:\n"
        "        return metric\n"
        '    for key in ("total", "rate"):\n'
        "        v = metric.fields.get(key)\n"
        "        if v != None:\n"
        "            metric.fields[key] = (v * s[0] + s[1]) * s[2]\n"
        "    return metric\n"
    )
    lines += [
        "# Scaling of points that are not in their canonical unit and that the input plugin",
        "# cannot convert itself (OPC UA and MQTT have no scale option; Modbus has `scale` but",
        "# no offset). Starlark floats are IEEE doubles and the script does the operations in",
        "# the collectors' order, so the result is bit-identical. Only the listed points",
        "# (tagpass) pass through the script.",
        "[[processors.starlark]]",
        *_kv(2, order=2, namepass=carriers),
        f"  source = '''\n{source}'''",
        "  [processors.starlark.tagpass]",
        *_kv(4, point=[r.id for r in scaled]),
        "",
    ]
    return lines


def _opcua(device: OpcUaDevice, refs: list[PointRef], settings: Settings) -> list[str]:
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
            *_kv(2, fieldexclude=["Quality"], tagexclude=list(PLUGIN_TAGS["opcua"])),
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
                         identifier=identifier, default_tags=_tags(ref), monitoring_params=OPCUA_MONITORING),
                ]
        lines.append("")
    return lines


def _cel_quality_good() -> str:
    return f'fields.Quality == "{OPCUA_GOOD}"'


def _modbus(device: ModbusDevice, refs: list[PointRef], settings: Settings) -> list[str]:
    host = device.host or settings.modbus_host
    port = device.port or settings.modbus_port
    lines = [
        f"# Modbus device {device.id}: polled every {device.poll_interval_s:g} s. One request per point:",
        "# request tags apply to all fields of a request and every point has its own `point`",
        "# tag, so points cannot share a request (one read of 1-4 registers each). The plugin's",
        "# own tags (name, slave_id, type) are removed. scale = the point's scale when that alone",
        "# is exact (offset 0, unit factor 1), else 1.0 and processors.starlark converts.",
        "# output = FLOAT64 keeps the field a float like the collectors' (integers otherwise).",
        "[[inputs.modbus]]",
        *_kv(2, name=device.id, controller=f"tcp://{host}:{port}", timeout=_duration(device.timeout_s),
             interval=_duration(device.poll_interval_s), configuration_type="request",
             tagexclude=list(PLUGIN_TAGS["modbus"])),
    ]
    for ref in refs:
        b = ref.point.modbus
        assert b is not None
        scale = float(ref.point.scale) if _native_modbus_scale(ref) else 1.0
        field = {"address": b.address, "name": point_field(ref), "type": b.type.upper(), "scale": scale,
                 "output": "FLOAT64"}
        lines += [
            f"  # point {ref.id}: word order {b.word_order}, byte order {b.byte_order}",
            "  [[inputs.modbus.request]]",
            *_kv(4, slave_id=b.unit_id, register=MODBUS_REGISTER[b.function],
                 byte_order=MODBUS_BYTE_ORDER[(b.word_order, b.byte_order)], measurement=ref.carrier.value,
                 fields=[field]),
            "    [inputs.modbus.request.tags]",
            *_kv(6, **_tags(ref)),
        ]
    lines.append("")
    return lines


def _mqtt(device: MqttDevice, refs: list[PointRef], park: Park, settings: Settings) -> list[str]:
    host = device.host or settings.mqtt_host
    port = device.port or settings.mqtt_port
    login = ({"username": "${LINGTAN_MQTT_USERNAME}", "password": "${LINGTAN_MQTT_PASSWORD}"}
             if settings.mqtt_username else {})
    lines = [
        f"# MQTT device {device.id}: one plugin instance (one MQTT session) per point. Telegraf",
        "# can only add constant tags per plugin instance (json_v2 takes tags from the payload",
        "# only), and points on the same topic differ in their `point` tag. QoS 1 with a",
        "# persistent session: the broker keeps messages while Telegraf is down.",
        f"# Timestamp: the payload's `{device.timestamp_path}` (epoch milliseconds), as the collectors use it.",
        "",
    ]
    for ref in refs:
        b = ref.point.mqtt
        assert b is not None
        lines += [
            f"# point {ref.id}",
            "[[inputs.mqtt_consumer]]",
            *_kv(2, servers=[f"tcp://{host}:{port}"], topics=[b.topic], topic_tag="", qos=1,
                 persistent_session=True, client_id=f"lingtan-{park.park.id}-{ref.id}",
                 max_undelivered_messages=1000, **login, data_format="json_v2"),
            "  [[inputs.mqtt_consumer.json_v2]]",
            *_kv(4, measurement_name=ref.carrier.value, timestamp_path=device.timestamp_path,
                 timestamp_format="unix_ms"),
            "    [[inputs.mqtt_consumer.json_v2.field]]",
            *_kv(6, path=b.json_path, rename=point_field(ref), type="float"),
            "  [inputs.mqtt_consumer.tags]",
            *_kv(4, **_tags(ref)),
            "",
        ]
    return lines


def telegraf_config(park: Park, settings: Settings) -> str:
    """The complete telegraf.conf (TOML) for ``park``.

    Parameters
    ----------
    park
        The validated park model; every point of every device is configured.
    settings
        Endpoints (InfluxDB URL, database and retention policy; default OPC UA endpoint,
        Modbus and MQTT hosts) and the write batch size and flush interval.

    Returns
    -------
    str
        The configuration text. Credentials are references to environment variables.

    Raises
    ------
    ValueError
        If a point tag collides with a tag that a Telegraf input plugin adds itself.
    """
    refs_by_device = points_by_device(park)
    lines = _header(park) + _agent(park, settings) + _output(settings)
    lines += _processors([r for refs in refs_by_device.values() for r in refs])
    for device in park.devices:
        refs = refs_by_device[device.id]
        if not refs:
            continue
        if isinstance(device, OpcUaDevice):
            lines += _opcua(device, refs, settings)
        elif isinstance(device, ModbusDevice):
            lines += _modbus(device, refs, settings)
        else:
            lines += _mqtt(device, refs, park, settings)
    return "\n".join(lines).rstrip("\n") + "\n"
