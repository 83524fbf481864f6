"""Reading a list of typed entries from a YAML data file (tariffs, limits), with errors that name the
file, the field and the value (docs/analysis.md §2, §7)."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
#: pydantic's names of validator steps and union members, left out of a field path
_NOT_FIELDS = ("function-after", "float", "int", "Multiple")


def field_path(loc: tuple) -> str:
    """``("electricity", "seasons", 0, "windows")`` -> ``electricity.seasons[0].windows``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in _NOT_FIELDS:
            out += f".{part}" if out else str(part)
    return out


def load_entries(path: Path, key: str, model: type[M], error: type[ValueError]) -> list[M]:
    """The entries of the list ``key`` of ``path``, each validated as ``model``; raises ``error`` naming the
    file, the entry's field and the value."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise error(f"{path}: cannot be read as YAML: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get(key), list):
        raise error(f"{path}: expected a mapping with a {key!r} list")
    out = []
    for i, item in enumerate(raw[key]):
        try:
            out.append(model.model_validate(item))
        except ValidationError as exc:
            errs = "; ".join(f"{key}[{i}].{field_path(e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
                             + (f" (value: {e['input']!r})" if not isinstance(e.get("input"), dict | list) else "")
                             for e in exc.errors())
            raise error(f"{path}: {errs}") from None
    return out
