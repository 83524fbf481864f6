"""Telegraf TOML helpers shared by the protocol fragments (``<protocol>/telegraf.py``) and the
generator (:mod:`lingtan_collectors.telegraf`, docs/telegraf.md)."""

from __future__ import annotations

import math
import re

from lingtan.park.index import PointRef
from lingtan.series import point_tags

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


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


def _tags(ref: PointRef, plugin_tags: tuple[str, ...] = ()) -> dict[str, str]:
    """The point's schema tags, without empty values (which line protocol cannot carry).

    ``plugin_tags`` are the tags the protocol's Telegraf input adds itself and its fragment
    removes with ``tagexclude``; a point tag of the same name would be removed with them.
    """
    tags = {k: v for k, v in sorted(point_tags(ref).items()) if v != ""}
    clash = set(tags) & set(plugin_tags)
    if clash:
        raise ValueError(
            f"point {ref.id}: tag(s) {sorted(clash)} collide with tags the Telegraf {ref.protocol.value} "
            "plugin adds itself and the generated configuration removes; rename the point tag"
        )
    return tags


def _is_identity(ref: PointRef) -> bool:
    return ref.point.scale == 1.0 and ref.point.offset == 0.0 and ref.to_canonical == 1.0
