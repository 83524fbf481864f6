"""The offline inventory format: committed JSON Schema, CLI, and error messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lingtan_calc.core.accounting.inventory import SCHEMA_PATH, inventory_schema

EXAMPLES = Path(__file__).parent / "examples"


def lingtan(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lingtan.cli", *args], capture_output=True, text=True, timeout=120)


def test_committed_schema_is_current():
    """calc-service/src/lingtan_calc/data/inventory.schema.json is what `lingtan accounting schema` generates."""
    assert json.loads(SCHEMA_PATH.read_text(encoding="utf-8")) == inventory_schema()


def test_examples_validate_against_the_schema():
    import jsonschema
    import yaml

    schema = inventory_schema()
    for path in EXAMPLES.glob("*.yaml"):
        data = json.loads(json.dumps(yaml.safe_load(path.read_text(encoding="utf-8")), default=str))
        jsonschema.validate(data, schema)


def test_cli_evaluate_lists_every_factor_with_its_source(tmp_path):
    out = tmp_path / "r.json"
    res = lingtan("accounting", "evaluate", str(EXAMPLES / "process_cement.yaml"), "-o", str(out))
    assert res.returncode == 0, res.stderr
    doc = json.loads(out.read_text(encoding="utf-8"))
    kiln = next(t for t in doc["totals"] if t["entity"] == "kiln")
    assert round(kiln["total_tco2"], 6) == 16463.554244
    assert doc["units"]["total_tco2"] == "tCO2"
    ids = {f["id"] for f in doc["factors"]}
    assert ids == {"gbt2589.raw_coal", "gbt2589.electricity.dangliang", "ndrc.coal.ncv", "ndrc.coal.cc",
                   "ndrc.coal.of", "mee.grid.2023.cn.average", "mee.grid.2023.cn.residual", "process.caco3"}
    for f in doc["factors"]:
        assert f["source"]["document"] and f["source"]["edition"] and f["confidence"]


def test_cli_evaluate_names_file_field_and_value(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"period_start": "2026-01-01", "period_end": "2027-01-01", "enterprises": [
        {"id": "e1", "energy": [{"carrier": "natural_gas", "quantity": -5, "unit": "m3"}]}]}))
    res = lingtan("accounting", "evaluate", str(bad))
    assert res.returncode == 2
    assert str(bad) in res.stderr and "enterprises.0.energy.0" in res.stderr and "-5" in res.stderr


def test_the_schema_states_what_the_validator_refuses():
    """Each check of the validator is in the committed JSON Schema too, so a client can check before sending."""
    import copy

    import jsonschema

    from lingtan_calc.core.accounting.inventory import parse_inventory

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    good = {"period_start": "2026-01-01", "period_end": "2027-01-01", "enterprises": [
        {"id": "e1", "energy": [{"carrier": "electricity", "quantity": 5, "unit": "kWh"}]}],
        "factor_overrides": [{"id": "park.x", "kind": "density", "subject": "diesel", "value": 0.84, "unit": "kg/L",
                              "valid_from": "2026-01-01", "source": {"document": "d", "edition": "1"},
                              "confidence": "c", "override": True, "author": "a", "reason": "r"}]}
    jsonschema.validate(good, schema)
    parse_inventory(good)
    bad = [
        lambda d: d["enterprises"][0]["energy"][0].update(quantity=-5),
        lambda d: d["enterprises"][0]["energy"][0].update(carrier="steam", unit="t", flow="renewable"),
        lambda d: d["enterprises"][0].update(id="park"),
        lambda d: d["factor_overrides"][0].pop("author"),
        lambda d: d["factor_overrides"][0].update(value=-1),
    ]
    for change in bad:
        doc = copy.deepcopy(good)
        change(doc)
        try:
            jsonschema.validate(doc, schema)
        except jsonschema.ValidationError:
            pass
        else:
            raise AssertionError(f"the schema accepts {doc}")
        try:
            parse_inventory(doc)
        except ValueError:
            pass
        else:
            raise AssertionError(f"the validator accepts {doc}")
