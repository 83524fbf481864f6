"""The ``inputs.modbus`` fragment of telegraf.conf for one Modbus device (docs/telegraf.md)."""

from __future__ import annotations

from lingtan.park.index import PointRef
from lingtan.park.model import Park
from lingtan.series import point_field
from lingtan.settings import Settings
from lingtan_collectors.common.telegraf import _duration, _kv, _tags
from lingtan_collectors.modbus.model import ModbusDevice

MODBUS_REGISTER = {3: "holding", 4: "input"}
#: tags that ``inputs.modbus`` adds itself and the fragment removes with tagexclude
PLUGIN_TAGS = ("name", "slave_id", "type")
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


def native_scale(ref: PointRef) -> bool:
    """True when Telegraf's modbus ``scale`` alone reproduces the point's conversion exactly.

    Telegraf computes ``float64(raw) * scale``; the collectors ``(raw * scale + 0.0) * 1.0``,
    which is the same double when the offset is 0 and the unit factor is 1.
    """
    return ref.point.offset == 0.0 and ref.to_canonical == 1.0


def telegraf_inputs(device: ModbusDevice, refs: list[PointRef], park: Park, settings: Settings) -> list[str]:
    """One ``inputs.modbus`` with one request per point of ``device``."""
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
             tagexclude=list(PLUGIN_TAGS)),
    ]
    for ref in refs:
        b = ref.point.modbus
        assert b is not None
        scale = float(ref.point.scale) if native_scale(ref) else 1.0
        field = {"address": b.address, "name": point_field(ref), "type": b.type.upper(), "scale": scale,
                 "output": "FLOAT64"}
        lines += [
            f"  # point {ref.id}: word order {b.word_order}, byte order {b.byte_order}",
            "  [[inputs.modbus.request]]",
            *_kv(4, slave_id=b.unit_id, register=MODBUS_REGISTER[b.function],
                 byte_order=MODBUS_BYTE_ORDER[(b.word_order, b.byte_order)], measurement=ref.carrier.value,
                 fields=[field]),
            "    [inputs.modbus.request.tags]",
            *_kv(6, **_tags(ref, PLUGIN_TAGS)),
        ]
    lines.append("")
    return lines
