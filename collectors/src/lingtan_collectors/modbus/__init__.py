"""Modbus TCP collector (polling)."""
