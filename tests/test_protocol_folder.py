"""A new protocol is one new folder under ``lingtan_collectors/`` (docs/architecture.md, "Adding a protocol").

The test writes a small protocol, ``example``, as a folder of its own and puts it on the
collectors' package path in a fresh interpreter (the protocol registry is built once per
process). Without a change anywhere else, the park model accepts its devices and bindings, the
park checks run its binding check, the plugins, the Telegraf generator and the park simulator
find it, and the loader names it among the protocols.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

MODEL = '''
from typing import Literal

from lingtan.park.base import BindingBase, DeviceBase
from lingtan.park.protocols import ProtocolSpec


class ExampleDevice(DeviceBase):
    protocol: Literal["example"]
    url: str

    @property
    def point_rate_hz(self) -> float:
        return 0.5


class ExampleBinding(BindingBase):
    key: str


def check_bindings(bound):
    seen = {}
    for device, point, ploc in bound:
        if (device.id, point.example.key) in seen:
            yield (*ploc, "example", "key"), f"key {point.example.key!r} is bound twice"
        seen[(device.id, point.example.key)] = point.id


PROTOCOL = ProtocolSpec("example", ExampleDevice, ExampleBinding, rank=40, check_bindings=check_bindings)
'''

PLUGIN = '''
from lingtan.park.model import Protocol
from lingtan_collectors.example.model import ExampleDevice
from lingtan_collectors.plugin import CollectorPlugin


async def run(runtime, stop):
    await stop.wait()


def telegraf_inputs(device, refs, park, settings):
    return [f"# example device {device.id}: {len(refs)} point(s) at {device.url}", ""]


class ExampleServer:
    def __init__(self, url, devices, context):
        self.url, self.devices, self.published = url, devices, []

    async def start(self, engine):
        pass

    async def publish(self, engine, faults, tick, emit):
        self.published.append(tick)

    async def stop(self):
        pass

    def describe(self):
        return f"example {self.url} ({len(self.devices)} device(s))"


PLUGIN = CollectorPlugin(Protocol.example, ExampleDevice, run, telegraf_inputs, ExampleServer,
                         park_server_key=lambda device, settings: device.url, park_server=ExampleServer)
'''

PARK = '''
park:
  id: xpark
  name: 示例园区
  province: 江苏
  grid_region: east_china
  location: {latitude: 31.5, longitude: 120.3}
devices:
- id: dev-x
  protocol: example
  url: http://meter.example/api
- id: dev-mq
  protocol: mqtt
enterprises:
- id: ent1
  name: 示例有限公司
  credit_code: 91320214MA1LT0001W
  industry_code: C3982
  units:
  - id: u1
    name: 一车间
    meters:
    - id: m-x
      name: 示例表
      carrier: electricity
      device: dev-x
      simulation: {model: constant, capacity: 100}
      points:
      - {id: m-x.import, kind: counter, unit: kWh, role: grid_import, example: {key: import}}
      - {id: m-x.power, kind: rate, unit: kW, role: grid_import, example: {key: power}}
    - id: m-mq
      name: MQTT 表
      carrier: electricity
      device: dev-mq
      points:
      - {id: m-mq.import, kind: counter, unit: kWh, role: grid_import, mqtt: {topic: t/m, json_path: e}}
'''

SCRIPT = '''
import asyncio, json, sys
from pathlib import Path

import lingtan_collectors
lingtan_collectors.__path__.append(sys.argv[1])

from lingtan.park import ParkModelError, parse_park
from lingtan.park.model import Protocol
from lingtan.settings import Settings
from lingtan_collectors.plugins import plugin_for
from lingtan_collectors.protocols import protocol_folders
from lingtan_collectors.telegraf import telegraf_config
from lingtan_tools.simulate.runner import ALL_PROTOCOLS, Simulator

text = Path(sys.argv[2]).read_text(encoding="utf-8")
park = parse_park(text, Path("xpark.yaml"))
out = {"folders": protocol_folders(), "protocols": [p.value for p in Protocol],
       "simulated": sorted(ALL_PROTOCOLS)}
device = park.devices[0]
out["device"] = [type(device).__name__, device.protocol is Protocol.example, plugin_for(device).protocol.value]
out["point"] = park.enterprises[0].units[0].meters[0].points[0].binding.key
out["telegraf"] = [line for line in telegraf_config(park, Settings()).splitlines() if "example device" in line]
for name, broken in (("twice", text.replace("{key: power}", "{key: import}")),
                     ("unknown", text.replace("protocol: example", "protocol: examplex"))):
    try:
        parse_park(broken, Path("xpark.yaml"))
    except ParkModelError as exc:
        out[name] = str(exc)


async def simulate():
    sim = Simulator(park, Settings(), protocols={"example"}, fault_rate=0.0, tick_s=0.05)
    await sim.start()
    await sim.wait_ticks(2)
    await sim.stop()
    return sim.describe(), len(sim.servers[0].published) >= 3

out["simulator"] = asyncio.run(simulate())
print(json.dumps(out, ensure_ascii=False))
'''


def test_a_protocol_is_one_folder(tmp_path: Path) -> None:
    folder = tmp_path / "protocols" / "example"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text('"""An example protocol, one folder."""\n', encoding="utf-8")
    (folder / "model.py").write_text(textwrap.dedent(MODEL), encoding="utf-8")
    (folder / "plugin.py").write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    park = tmp_path / "xpark.yaml"
    park.write_text(PARK, encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(folder.parent), str(park)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])

    assert out["folders"] == ["example", "modbus", "mqtt", "opcua"]
    assert out["protocols"] == ["opcua", "modbus", "mqtt", "example"]  # by rank
    assert out["simulated"] == ["example", "modbus", "mqtt", "opcua"]
    assert out["device"] == ["ExampleDevice", True, "example"]
    assert out["point"] == "import"
    assert out["telegraf"] == ["# example device dev-x: 2 point(s) at http://meter.example/api"]
    assert "enterprises[0].units[0].meters[0].points[1].example.key" in out["twice"]
    assert "key 'import' is bound twice" in out["twice"]
    assert "'example'" in out["unknown"] and "examplex" in out["unknown"]
    describe, published = out["simulator"]
    assert describe == "example http://meter.example/api (1 device(s))"
    assert published


def test_the_shipped_protocols_are_their_folders() -> None:
    from lingtan.park.model import PROTOCOLS
    from lingtan_collectors.plugins import plugin
    from lingtan_collectors.protocols import protocol_folders

    assert [spec.name for spec in PROTOCOLS] == ["opcua", "modbus", "mqtt"]
    assert protocol_folders() == ["modbus", "mqtt", "opcua"]
    for spec in PROTOCOLS:
        assert plugin(spec.name).device_model is spec.device_model
        assert spec.device_model.__module__ == f"lingtan_collectors.{spec.name}.model"


def test_any_module_may_be_imported_first() -> None:
    """The registry loads the protocol folders while the park model is assembled; a process that
    starts with a protocol's model, the registry or the collectors' command line still gets it."""
    for first in ("lingtan_collectors.modbus.model", "lingtan_collectors.protocols", "lingtan.park.base",
                  "lingtan_collectors.cli", "lingtan.park"):
        code = f"import {first}; from lingtan.park.model import Protocol; print(','.join(Protocol))"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, (first, done.stderr)
        assert done.stdout.strip() == "opcua,modbus,mqtt", first
