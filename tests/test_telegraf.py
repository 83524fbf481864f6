"""The generated telegraf.conf writes the same series as the Python collectors.

The TOML is parsed with tomllib and, for every point, the metric Telegraf would emit is
rebuilt from the plugin semantics (checked against the Telegraf sources, see
collectors/src/lingtan_collectors/telegraf.py): measurement, tags (including the ones the plugins add and the
configuration removes) and field. The result must equal lingtan.series.series_key.
"""

from __future__ import annotations

import copy
import struct
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pymodbus.client import ModbusTcpClient

from lingtan.park import parse_park
from lingtan.park.index import PointRef, iter_points
from lingtan.park.model import Park
from lingtan.series import SeriesKey, series_key
from lingtan.settings import DEMO_PARK, Settings
from lingtan_collectors.telegraf import MODBUS_BYTE_ORDER, telegraf_config

SETTINGS = Settings(influx_url="http://influx.example:8086", influx_db="lingtan")
OPCUA_ID_TYPES = {"s", "i", "g"}


# --------------------------------------------------------------------------- reconstruction


def _apply_modifiers(plugin: dict, tags: dict[str, str], fields: list[str]) -> tuple[dict[str, str], list[str]]:
    """tagexclude / fieldexclude of an input plugin (literal names only in our files)."""
    tags = {k: v for k, v in tags.items() if k not in plugin.get("tagexclude", [])}
    fields = [f for f in fields if f not in plugin.get("fieldexclude", [])]
    return tags, fields


def _emitted(conf: dict) -> list[tuple[tuple, SeriesKey, dict[str, Any]]]:
    """(binding, series, scaling info) of every metric the configuration produces."""
    agent = conf["agent"]
    extra = dict(conf.get("global_tags", {}))
    out = []

    def add(binding: tuple, plugin: dict, measurement: str, tags: dict[str, str], fields: list[str], info: dict) -> None:
        tags, fields = _apply_modifiers(plugin, {**tags, **extra}, fields)
        if not agent.get("omit_hostname", False):
            tags["host"] = "telegraf-host"
        assert len(fields) == 1, (binding, fields)
        out.append((binding, SeriesKey(measurement, tuple(sorted(tags.items())), fields[0]), info))

    for plugin in conf["inputs"].get("opcua_listener", []):
        for group in plugin.get("group", []):
            measurement = group.get("name") or plugin.get("name") or "opcua_listener"
            for node in group["nodes"]:
                ns = node.get("namespace", group.get("namespace"))
                uri = node.get("namespace_uri", group.get("namespace_uri"))
                assert (ns is None) != (uri is None), "exactly one of namespace and namespace_uri"
                id_type = node.get("identifier_type", group.get("identifier_type"))
                node_id = f"ns={ns};{id_type}={node['identifier']}" if ns is not None else f"nsu={uri};{id_type}={node['identifier']}"
                tags = {"id": node_id, **group.get("default_tags", {}), **node.get("default_tags", {})}
                binding = ("opcua", plugin["endpoint"], uri, id_type, node["identifier"])
                add(binding, plugin, measurement, tags, [node["name"], "Quality"], {})
                assert "Quality" in plugin["metricpass"]

    for plugin in conf["inputs"].get("modbus", []):
        assert plugin["configuration_type"] == "request"
        for req in plugin["request"]:
            register = {"holding": "holding_register", "input": "input_register"}[req["register"]]
            for field in req["fields"]:
                measurement = field.get("measurement") or req.get("measurement") or "modbus"
                tags = {"name": plugin["name"], "slave_id": str(req["slave_id"]), "type": register, **req.get("tags", {})}
                binding = ("modbus", plugin["controller"], req["slave_id"], req["register"], field["address"],
                           field["type"])
                info = {"scale": field["scale"], "output": field["output"], "byte_order": req["byte_order"]}
                add(binding, plugin, measurement, tags, [field["name"]], info)

    for plugin in conf["inputs"].get("mqtt_consumer", []):
        assert len(plugin["topics"]) == 1 and plugin["data_format"] == "json_v2"
        topic = plugin["topics"][0]
        topic_tag = plugin.get("topic_tag", "topic")
        for block in plugin["json_v2"]:
            for field in block["field"]:
                tags = dict(plugin.get("tags", {}))
                if topic_tag:
                    tags[topic_tag] = topic
                name = field.get("rename") or field["path"].split(".")[-1]
                binding = ("mqtt", plugin["servers"][0], topic, field["path"])
                info = {"type": field.get("type"), "timestamp_path": block.get("timestamp_path"),
                        "timestamp_format": block.get("timestamp_format"), "client_id": plugin["client_id"]}
                add(binding, plugin, block["measurement_name"], tags, [name], info)
    return out


def _binding(ref: PointRef, park: Park) -> tuple:
    device = next(d for d in park.devices if d.id == ref.device_id)
    p = ref.point
    if p.opcua is not None:
        # like the OPC UA collector: the namespace is the device's URI, any ns= index is ignored
        node_id = p.opcua.node_id.split(";", 1)[1] if p.opcua.node_id.startswith("ns=") else p.opcua.node_id
        id_type, identifier = node_id.split("=", 1)
        return ("opcua", device.endpoint or SETTINGS.opcua_endpoint, device.namespace_uri, id_type, identifier)
    if p.modbus is not None:
        host = device.host or SETTINGS.modbus_host
        port = device.port or SETTINGS.modbus_port
        register = {3: "holding", 4: "input"}[p.modbus.function]
        return ("modbus", f"tcp://{host}:{port}", p.modbus.unit_id, register, p.modbus.address, p.modbus.type.upper())
    assert p.mqtt is not None
    host = device.host or SETTINGS.mqtt_host
    port = device.port or SETTINGS.mqtt_port
    return ("mqtt", f"tcp://{host}:{port}", p.mqtt.topic, p.mqtt.json_path)


def _starlark(conf: dict) -> tuple[dict[str, tuple[float, float, float]], Any, set[str]]:
    """SCALING table, apply() and tagpass points of the scaling processor (empty if none)."""
    procs = conf.get("processors", {}).get("starlark", [])
    if not procs:
        return {}, None, set()
    assert len(procs) == 1
    # The script is written in the common subset of Starlark and Python, so it runs here.
    namespace: dict[str, Any] = {}
    exec(procs[0]["source"], namespace)
    return namespace["SCALING"], namespace["apply"], set(procs[0]["tagpass"]["point"])


class _Metric:
    """The three attributes of a Telegraf Starlark metric that the script uses."""

    def __init__(self, name: str, tags: dict[str, str], fields: dict[str, float]):
        self.name, self.tags, self.fields = name, tags, fields


def _check_config(park: Park) -> dict:
    text = telegraf_config(park, SETTINGS)
    conf = tomllib.loads(text)
    refs = iter_points(park)
    by_binding: dict[tuple, list] = {}
    for binding, key, info in _emitted(conf):
        by_binding.setdefault(binding, []).append((key, info))
    scaling, apply, tagpass = _starlark(conf)
    assert set(scaling) == tagpass

    seen = set()
    for ref in refs:
        emitted = by_binding.get(_binding(ref, park), [])
        assert len(emitted) == 1, f"point {ref.id} configured {len(emitted)} times"
        key, info = emitted[0]
        assert key == series_key(ref), f"point {ref.id}: {key.text()} != {series_key(ref).text()}"
        seen.add(_binding(ref, park))

        # scaling: plugin-native (Modbus scale) or the Starlark table, never both, never neither
        p = ref.point
        if ref.id in scaling:
            assert scaling[ref.id] == (p.scale, p.offset, ref.to_canonical)
            if p.modbus is not None:
                assert info["scale"] == 1.0
            for raw in (0.0, 1.0, 12345.678, -3.25, 4294967295.0, 0.1):
                m = apply(_Metric(ref.carrier.value, dict(key.tags), {key.field: raw}))
                assert m.fields[key.field] == ref.engineering_value(raw)  # bit-identical
        elif p.modbus is not None:
            assert info["scale"] == p.scale and p.offset == 0.0 and ref.to_canonical == 1.0
            for raw in (0, 1, 65535, 4294967295, 123457):
                assert float(raw) * info["scale"] == ref.engineering_value(raw)
        else:
            assert (p.scale, p.offset, ref.to_canonical) == (1.0, 0.0, 1.0)
        if p.modbus is not None:
            assert info["output"] == "FLOAT64"
            assert info["byte_order"] == MODBUS_BYTE_ORDER[(p.modbus.word_order, p.modbus.byte_order)]
        if p.mqtt is not None:
            assert info["type"] == "float" and info["timestamp_format"] == "unix_ms"
    assert seen == set(by_binding), "configuration has inputs that are no point of the park"
    return conf


# --------------------------------------------------------------------------- tests


def _demo() -> Park:
    return parse_park(DEMO_PARK.read_text(encoding="utf-8"), DEMO_PARK)


def test_every_demo_point_maps_to_its_series() -> None:
    park = _demo()
    conf = _check_config(park)
    inputs = conf["inputs"]
    n_opcua = sum(len(g["nodes"]) for p in inputs["opcua_listener"] for g in p["group"])
    n_modbus = sum(len(r["fields"]) for p in inputs["modbus"] for r in p["request"])
    assert n_opcua + n_modbus + len(inputs["mqtt_consumer"]) == len(iter_points(park))
    assert "starlark" not in conf["processors"]  # demo: identity or exact Modbus scale only


def test_agent_and_output() -> None:
    conf = tomllib.loads(telegraf_config(_demo(), SETTINGS))
    agent = conf["agent"]
    assert agent["omit_hostname"] is True
    assert agent["metric_batch_size"] >= SETTINGS.write_batch_size
    assert agent["metric_buffer_limit"] >= 10 * agent["metric_batch_size"]
    (out,) = conf["outputs"]["influxdb"]
    assert out["urls"] == ["http://influx.example:8086"] and out["database"] == "lingtan"
    assert out["skip_database_creation"] is True
    assert out["username"] == "${LINGTAN_INFLUX_USER}" and out["password"] == "${LINGTAN_INFLUX_PASSWORD}"
    (conv,) = conf["processors"]["converter"]
    assert conv["fields"]["float"] == ["total", "rate"]
    for plugin in conf["inputs"]["opcua_listener"]:
        assert plugin["subscription_interval"] == "1s" and plugin["tagexclude"] == ["id"]
        for group in plugin["group"]:
            for node in group["nodes"]:
                assert node["monitoring_params"] == {"sampling_interval": "0s", "queue_size": 1000,
                                                     "discard_oldest": True}
    clients = [p["client_id"] for p in conf["inputs"]["mqtt_consumer"]]
    assert len(clients) == len(set(clients))
    assert all(p["qos"] == 1 and p["persistent_session"] for p in conf["inputs"]["mqtt_consumer"])


def _variant(edit) -> Park:
    data = yaml.safe_load(DEMO_PARK.read_text(encoding="utf-8"))
    data = copy.deepcopy(data)
    edit(data)
    return parse_park(yaml.safe_dump(data, allow_unicode=True), Path("variant.yaml"))


def _points(data: dict):
    for ent in data["enterprises"]:
        for unit in ent["units"]:
            for meter in unit["meters"]:
                for point in meter["points"]:
                    yield meter, point


def _first(data: dict, protocol: str, kind: str) -> dict:
    return next(p for m, p in _points(data) if protocol in p and p["kind"] == kind and m["carrier"] == "electricity")


def test_scaling_offsets_unit_factors_and_point_tags() -> None:
    def edit(data: dict) -> None:
        _first(data, "opcua", "counter").update(unit="MWh")  # unit factor 1000
        _first(data, "opcua", "rate").update(scale=0.5, offset=-2.0, tags={"line": "SMT 1", "phase": "L1"})
        _first(data, "mqtt", "rate").update(scale=2.0, offset=1.5, unit="W")  # factor 1e-3
        _first(data, "mqtt", "counter").update(tags={"line": "a,b=c"})  # escaping is the output's job
        modbus = [p for _, p in _points(data) if "modbus" in p]
        modbus[0].update(offset=-40.0)  # Modbus has no offset option
        modbus[1].update(unit="W" if modbus[1]["kind"] == "rate" else "Wh")
        modbus[2].update(tags={"cabinet": "AP-3"})
        opcua = [p for _, p in _points(data) if "opcua" in p]
        opcua[5]["opcua"]["node_id"] = opcua[5]["opcua"]["node_id"].split(";", 1)[1]  # without ns=

    park = _variant(edit)
    conf = _check_config(park)
    scaling, _, _ = _starlark(conf)
    assert len(scaling) == 5
    nodes = [n for p in conf["inputs"]["opcua_listener"] for g in p["group"] for n in g["nodes"]]
    assert all(n["namespace_uri"] == "urn:lingtan:demo" and "namespace" not in n for n in nodes)


def test_opcua_connections_respect_max_nodes_per_connection() -> None:
    def edit(data: dict) -> None:
        for d in data["devices"]:
            if d["protocol"] == "opcua":
                d["max_nodes_per_connection"] = 20

    park = _variant(edit)
    conf = _check_config(park)
    plugins = conf["inputs"]["opcua_listener"]
    sizes = [sum(len(g["nodes"]) for g in p["group"]) for p in plugins]
    assert max(sizes) <= 20 and sum(sizes) == sum(1 for r in iter_points(park) if r.point.opcua)
    assert len(plugins) == -(-sum(sizes) // 20)


def test_point_tag_that_a_plugin_would_overwrite_is_rejected() -> None:
    def edit(data: dict) -> None:
        next(p for _, p in _points(data) if "modbus" in p)["tags"] = {"type": "x"}

    with pytest.raises(ValueError, match="collide"):
        telegraf_config(_variant(edit), SETTINGS)


# --------------------------------------------------------------------------- Modbus byte order


def _telegraf_decode(raw: bytes, order: str, words: int) -> int:
    """Telegraf's register decoding (plugins/inputs/modbus/type_conversions*.go)."""
    be16 = [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]
    le16 = [int.from_bytes(raw[i:i + 2], "little") for i in range(0, len(raw), 2)]
    if words == 1:
        return be16[0] if order in ("ABCD", "CDAB") else le16[0]
    if order == "ABCD":
        return int.from_bytes(raw, "big")
    if order == "DCBA":
        return int.from_bytes(raw, "little")
    seq = le16 if order == "BADC" else list(reversed(be16))  # BADC: MSW first; CDAB: LSW first
    value = 0
    for w in seq:
        value = (value << 16) | w
    return value


@pytest.mark.parametrize("word_order", ["big", "little"])
@pytest.mark.parametrize("byte_order", ["big", "little"])
@pytest.mark.parametrize("dtype", ["int16", "uint16", "int32", "uint32", "float32", "float64"])
def test_modbus_byte_order_matches_pymodbus_convention(word_order: str, byte_order: str, dtype: str) -> None:
    value = {"int16": -1234, "uint16": 54321, "int32": -123456789, "uint32": 3123456789,
             "float32": 1234.5, "float64": -98765.4321}[dtype]
    dt = getattr(ModbusTcpClient.DATATYPE, dtype.upper())
    regs = ModbusTcpClient.convert_to_registers(value, dt, word_order=word_order)
    if byte_order == "little":  # the device swaps the two bytes of every register
        regs = [((r & 0xFF) << 8) | (r >> 8) for r in regs]
    wire = b"".join(r.to_bytes(2, "big") for r in regs)
    bits = _telegraf_decode(wire, MODBUS_BYTE_ORDER[(word_order, byte_order)], len(regs))
    fmt = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "float32": ">f", "float64": ">d"}[dtype]
    decoded = struct.unpack(fmt, bits.to_bytes(2 * len(regs), "big"))[0]
    assert decoded == pytest.approx(value, rel=1e-7)
