"""A lean MQTT 3.1.1 QoS 1 publisher for the MQTT benchmark's load generator.

The benchmark measures broker → collector → InfluxDB. Its load generator has to offer
20,000 QoS 1 messages/s on the same two cores, and paho-mqtt costs about 45 µs of CPU per
published message (its PUBACK bookkeeping and one socket write per message), so with paho
the generator alone needed a whole core. This publisher speaks the same protocol on the
wire (OASIS MQTT 3.1.1: CONNECT §3.1, PUBLISH §3.3, PUBACK §3.4) but packs the messages of
one tick into one ``sendall`` and counts acknowledgements in a reader thread. It is a load
generator only; devices and the simulator use paho.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time


def remaining_length(n: int) -> bytes:
    """MQTT variable-length encoding of a packet's remaining length (§2.2.3)."""
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _utf8(s: str) -> bytes:
    b = s.encode("utf-8")
    return struct.pack("!H", len(b)) + b


def connect_packet(client_id: str, clean_session: bool = True, keepalive_s: int = 0) -> bytes:
    """CONNECT (§3.1). ``keepalive_s`` 0: no keep-alive, the broker never times the client out."""
    variable = _utf8("MQTT") + bytes([4, 0x02 if clean_session else 0]) + struct.pack("!H", keepalive_s)
    body = variable + _utf8(client_id)
    return b"\x10" + remaining_length(len(body)) + body


def publish_qos1(topic: bytes, packet_id: int, payload: bytes) -> bytes:
    """PUBLISH with QoS 1 (§3.3); ``topic`` already length-prefixed (see :func:`topic_field`)."""
    return b"\x32" + remaining_length(len(topic) + 2 + len(payload)) + topic + struct.pack("!H", packet_id) + payload


def topic_field(topic: str) -> bytes:
    """A topic name as PUBLISH carries it: two length bytes, then UTF-8."""
    return _utf8(topic)


class LeanPublisher:
    """QoS 1 publisher with at most ``window`` unacknowledged messages.

    :meth:`publish_many` blocks while the window is full, like a device whose send queue
    is bounded; :attr:`acked` counts PUBACKs, and ``on_ack(packet_id, t_ack)`` is called in
    the reader thread for every acknowledgement whose packet id is a multiple of 100.
    """

    def __init__(self, host: str, port: int, client_id: str, window: int = 2000, timeout_s: float = 10.0):
        self.window = window
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(connect_packet(client_id))
        connack = self._read_exact(4)
        if connack[0] != 0x20 or connack[3] != 0:
            raise ConnectionError(f"MQTT broker {host}:{port} refused CONNECT: CONNACK {connack.hex()}")
        self.sock.settimeout(None)
        self.sent = 0
        self.acked = 0
        self.on_ack = None
        self._next_id = 0
        self._cond = threading.Condition()
        self._closed = False
        self._reader = threading.Thread(target=self._read_acks, name="mqtt-acks", daemon=True)
        self._reader.start()

    def _read_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("MQTT broker closed the connection")
            buf += chunk
        return buf

    def _read_acks(self) -> None:
        """Parse the broker's packets: PUBACKs are counted, anything else is skipped."""
        buf = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                buf += chunk
                pos, acks, now = 0, 0, time.monotonic()
                while len(buf) - pos >= 2:
                    kind = buf[pos]
                    # remaining length: PUBACK and PINGRESP fit in one byte; decode fully anyway
                    length, mult, i = 0, 1, pos + 1
                    while i < len(buf):
                        b = buf[i]
                        length += (b & 0x7F) * mult
                        mult *= 128
                        i += 1
                        if not b & 0x80:
                            break
                    else:
                        break  # length bytes incomplete
                    if len(buf) - i < length:
                        break
                    if kind == 0x40:
                        acks += 1
                        if self.on_ack is not None:
                            packet_id = (buf[i] << 8) | buf[i + 1]
                            if packet_id % 100 == 0:
                                self.on_ack(packet_id, now)
                    pos = i + length
                buf = buf[pos:]
                if acks:
                    with self._cond:
                        self.acked += acks
                        self._cond.notify_all()
        except OSError:
            if not self._closed:
                raise

    def next_packet_id(self) -> int:
        """1 .. 65535, then round again (0 is not a valid packet id)."""
        self._next_id = self._next_id % 65535 + 1
        return self._next_id

    def publish_many(self, packets: list[bytes], stop: threading.Event | None = None) -> None:
        """Send PUBLISH packets, keeping at most ``window`` unacknowledged."""
        i = 0
        while i < len(packets):
            with self._cond:
                while self.sent - self.acked >= self.window:
                    if stop is not None and stop.is_set():
                        return
                    self._cond.wait(0.1)
                room = self.window - (self.sent - self.acked)
            part = packets[i:i + room]
            self.sock.sendall(b"".join(part))
            self.sent += len(part)
            i += len(part)

    def close(self) -> None:
        """DISCONNECT (§3.14) and close the socket."""
        self._closed = True
        with contextlib.suppress(OSError):
            self.sock.sendall(b"\xe0\x00")
        self.sock.close()
