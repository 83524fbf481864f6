"""MQTT collector (QoS 1, persistent session)."""
