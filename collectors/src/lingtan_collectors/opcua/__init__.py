"""OPC UA collector (subscriptions)."""
