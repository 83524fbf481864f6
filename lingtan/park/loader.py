"""Load and validate a park YAML file, with errors that name file, line and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lingtan.park.checks import check_park
from lingtan.park.model import PROTOCOLS, Park

Loc = tuple[Any, ...]
#: libyaml's safe loader when PyYAML was built with it (about 10x faster on large parks)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: errors listed in the exception message (all are kept in ``ParkModelError.errors``)
MAX_SHOWN = 50


class ParkModelError(ValueError):
    """One or more errors in a park file. ``errors`` holds (line, field path, message)."""

    def __init__(self, path: Path, errors: list[tuple[int | None, str, str]]):
        self.path = path
        self.errors = errors
        lines = [f"{path}:{line or '?'}: {field}: {msg}" for line, field, msg in errors[:MAX_SHOWN]]
        if len(errors) > MAX_SHOWN:
            lines.append(f"... and {len(errors) - MAX_SHOWN} more")
        super().__init__(f"invalid park model {path} ({len(errors)} error(s)):\n" + "\n".join(lines))


def _line_map(node: yaml.Node, path: Loc, out: dict[Loc, int], dupes: list[tuple[Loc, int]]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                dupes.append(((*path, key), key_node.start_mark.line + 1))
            seen.add(key)
            out[(*path, key)] = key_node.start_mark.line + 1
            _line_map(value_node, (*path, key), out, dupes)
            out[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_map(item, (*path, i), out, dupes)


def _format_loc(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<document>"


def _lookup(lines: dict[Loc, int], loc: Loc) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _value_at(data: Any, loc: Loc) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


#: the protocol names, which pydantic puts into the location of a device error
PROTOCOL_NAMES = frozenset(spec.name for spec in PROTOCOLS)


def parse_park(text: str, path: Path) -> Park:
    """Validate YAML ``text`` (read from ``path``) into a :class:`Park`."""
    try:
        root = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ParkModelError(path, [(mark.line + 1 if mark else None, "<yaml>", str(exc))]) from None
    if root is None or not isinstance(data, dict):
        raise ParkModelError(path, [(1, "<document>", "the park file must be a YAML mapping")])
    lines: dict[Loc, int] = {}
    dupes: list[tuple[Loc, int]] = []
    _line_map(root, (), lines, dupes)
    if dupes:
        raise ParkModelError(path, [(line, _format_loc(loc), "duplicate key") for loc, line in dupes])
    try:
        park = Park.model_validate(data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            # discriminated unions insert the tag (e.g. 'modbus') into loc; drop parts that are not in the document
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in PROTOCOL_NAMES
                                                          and len(err["loc"]) > 1 and err["loc"][0] == "devices"))
            value = _value_at(data, loc)
            msg = err["msg"]
            if value is not None and not isinstance(value, dict | list):
                msg += f" (value: {value!r})"
            errors.append((_lookup(lines, loc), _format_loc(loc), msg))
        raise ParkModelError(path, errors) from None
    problems = check_park(park)
    if problems:
        raise ParkModelError(path, [(_lookup(lines, loc), _format_loc(loc), msg) for loc, msg in problems])
    return park


def load_park(path: str | Path) -> Park:
    """Read and validate a park YAML file. Raises :class:`ParkModelError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ParkModelError(path, [(None, "<file>", f"cannot read: {exc.strerror}")]) from None
    return parse_park(text, path)
