"""The MQTT collector plugin (paho-mqtt, QoS 1, persistent session, docs/architecture.md)."""

from lingtan.park.model import MqttDevice, Protocol
from lingtan_collectors.mqtt.collector import run_mqtt
from lingtan_collectors.mqtt.simulator import MqttSimPublisher
from lingtan_collectors.mqtt.telegraf import telegraf_inputs
from lingtan_collectors.plugin import CollectorPlugin

PLUGIN = CollectorPlugin(Protocol.mqtt, MqttDevice, run_mqtt, telegraf_inputs, MqttSimPublisher, blocking=True)
