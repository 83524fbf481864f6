"""The park model and its loader.

The names below load on first use (PEP 562): a protocol's ``model.py`` imports
:mod:`lingtan.park.base` while :mod:`lingtan.park.model` is being assembled from the registered
protocols (:mod:`lingtan.park.protocols`), so importing this package must not import the model.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ParkModelError": "lingtan.park.loader", "load_park": "lingtan.park.loader", "parse_park": "lingtan.park.loader",
    "Enterprise": "lingtan.park.model", "Meter": "lingtan.park.model", "Park": "lingtan.park.model",
    "Point": "lingtan.park.model", "ProductionUnit": "lingtan.park.model", "Protocol": "lingtan.park.model",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lingtan.park' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
