"""The ``inputs.mqtt_consumer`` fragment of telegraf.conf for one MQTT device (docs/telegraf.md)."""

from __future__ import annotations

from lingtan.park.index import PointRef
from lingtan.park.model import Park
from lingtan.series import point_field
from lingtan.settings import Settings
from lingtan_collectors.common.telegraf import _kv, _tags
from lingtan_collectors.mqtt.model import MqttDevice


def telegraf_inputs(device: MqttDevice, refs: list[PointRef], park: Park, settings: Settings) -> list[str]:
    """One ``inputs.mqtt_consumer`` (one MQTT session) per point of ``device``."""
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
