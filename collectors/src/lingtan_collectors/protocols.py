"""The protocols the collectors speak, for the park model's registry (:mod:`lingtan.park.protocols`).

Every sub-package ``lingtan_collectors/<protocol>/`` with a ``model.py`` that defines
``PROTOCOL`` (a :class:`~lingtan.park.protocols.ProtocolSpec`) is a protocol: adding the folder
is all it takes (docs/architecture.md, "Adding a protocol"). Only the ``model`` modules are
imported here, which need nothing but pydantic.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil

import lingtan_collectors
from lingtan.park.protocols import ProtocolSpec


def protocol_folders() -> list[str]:
    """The names of the protocol folders (those with a ``model.py``), sorted."""
    return sorted(info.name for info in pkgutil.iter_modules(lingtan_collectors.__path__)
                  if info.ispkg and importlib.util.find_spec(f"lingtan_collectors.{info.name}.model") is not None)


def specs() -> list[ProtocolSpec]:
    """The :class:`ProtocolSpec` of every protocol folder; the folder name is the protocol's name."""
    found = []
    for name in protocol_folders():
        spec = importlib.import_module(f"lingtan_collectors.{name}.model").PROTOCOL
        if spec.name != name:
            raise RuntimeError(f"lingtan_collectors/{name}/model.py declares protocol {spec.name!r}; "
                               f"a protocol folder is named after its protocol")
        found.append(spec)
    return found
