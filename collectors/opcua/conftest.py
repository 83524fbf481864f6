"""Make the session fixtures of ``tests/conftest.py`` (``influxd``, ``mosquitto``) visible here.

pytest only applies a conftest.py to tests in its own folder and below, and ``tests/`` is a
sibling of ``collectors/``; so this folder loads that file (once per process, by path) and
re-exports its fixtures. A repository-root conftest.py would make this unnecessary.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def _shared_conftest() -> ModuleType:
    name = "lingtan_tests_conftest"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[2] / "tests" / "conftest.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_shared = _shared_conftest()
services_state_dir = _shared.services_state_dir
influxd = _shared.influxd
mosquitto = _shared.mosquitto
