"""paho's MQTT client with a read buffer and batched acknowledgements.

At 20,000 messages/s the stock paho-mqtt 2.2.0 client spends most of the collector's CPU
in system calls, not in the collector's own work (profile in docs/benchmarks.md):

* it reads every packet with at least three ``recv`` calls (1 byte of packet type, the
  remaining length byte by byte, then the body), and the threaded loop runs ``select``
  before every single packet;
* every ``ack()`` queues one 4-byte PUBACK and writes a wake-up byte to paho's socket pair.

:class:`BufferedClient` reads the socket 64 KiB at a time and serves paho's small reads
from that buffer, keeps reading packets while the buffer holds any, and sends the PUBACKs
of a batch as one write. Nothing about the protocol changes: the same packets in the same
order. It relies on three internals of paho-mqtt (``_sock_recv``, ``_sock_close``,
``_packet_queue``), which is why paho-mqtt is pinned to an exact version in
pyproject.toml; ``collectors/src/lingtan_collectors/mqtt/test_mqtt.py`` exercises all of them against mosquitto.
"""

from __future__ import annotations

import select
import struct

import paho.mqtt.client as mqtt

#: bytes read from the socket at a time
READ_CHUNK = 65536
_PUBACK = struct.Struct("!BBH")  # MQTT 3.1.1 §3.4: type 0x40, remaining length 2, packet id


class BufferedClient(mqtt.Client):
    """A paho ``Client`` that reads in large chunks and acknowledges QoS 1 messages in batches."""

    def __init__(self, *args: object, **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._rbuf = b""
        self._rpos = 0

    # ------------------------------------------------------------------ reading
    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rpos >= len(self._rbuf):
            data = super()._sock_recv(READ_CHUNK)  # BlockingIOError when the socket is dry
            if not data:
                return data  # connection closed
            self._rbuf, self._rpos = data, 0
        pos = self._rpos
        chunk = self._rbuf[pos:pos + bufsize]
        self._rpos = pos + len(chunk)
        return chunk

    def buffered(self) -> int:
        """Bytes received from the broker but not yet parsed."""
        return len(self._rbuf) - self._rpos

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        # paho reads one packet per select(); go on while the buffer still holds data, since
        # select() cannot see bytes that have already left the socket
        rc = super().loop_read(max_packets)
        while rc == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS and self._sock is not None and self.buffered():
            rc = super().loop_read(max_packets)
        return rc

    def more_to_read(self) -> bool:
        """True if another packet has (at least partly) arrived: buffered, or waiting in the socket."""
        if self.buffered():
            return True
        sock = self._sock
        if sock is None:
            return False
        pending = getattr(sock, "pending", None)  # TLS: bytes decrypted but not read yet
        if pending is not None and pending():
            return True
        try:
            return bool(select.select([sock], [], [], 0)[0])
        except (OSError, ValueError):
            return False

    def _sock_close(self) -> None:
        # bytes of a closed connection must never be parsed as the start of the next one
        self._rbuf, self._rpos = b"", 0
        super()._sock_close()

    # ------------------------------------------------------------------ acknowledging
    def puback_many(self, mids: list[int]) -> mqtt.MQTTErrorCode:
        """Acknowledge QoS 1 messages ``mids`` (manual-ack mode) with one queued write."""
        if not mids:
            return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
        packet = b"".join([_PUBACK.pack(mqtt.PUBACK, 2, mid) for mid in mids])
        # queued like paho's own PUBACK (_send_command_with_mid), as one packet of many acks
        return self._packet_queue(mqtt.PUBACK, packet, 0, 0)
