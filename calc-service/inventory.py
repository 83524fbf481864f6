"""Offline inventories: period quantities per enterprise and carrier, accounted like metered data.

This is how non-metered data and annual reporting enter Lingtan (``lingtan accounting
evaluate FILE`` and ``POST /api/v1/accounting/evaluate``). An inventory lists, for one
period, each enterprise's energy by carrier (any unit pint can convert to the carrier's
canonical unit), its process activities, its green-electricity claims and its production.
It becomes the same ledger the metered path builds, and goes through the same
:func:`lingtan.calc.results.account`; the park is the sum of the enterprises.

The input format is :class:`Inventory`; its JSON Schema is committed as
``calc-service/data/inventory.schema.json`` (regenerate with ``lingtan accounting schema``).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lingtan.calc.accounting import AccountingOptions
from lingtan.calc.boundary import PARK_ENTITY
from lingtan.calc.factors import Factor, FactorLibrary
from lingtan.calc.results import Accounts, account
from lingtan.calc.units import UnitMismatch, convert
from lingtan.park.carriers import CARRIER_UNITS, Carrier

SCHEMA_PATH = Path(__file__).parent / "data" / "inventory.schema.json"
TZ = "Asia/Shanghai"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnergyLine(_Strict):
    """One quantity of one carrier crossing the enterprise's boundary in the period."""

    carrier: Carrier
    quantity: float = Field(description="physical quantity in `unit`; a deduction is stated by `flow`, not a sign")
    unit: str = Field(description="any unit convertible to the carrier's canonical unit, e.g. kWh, MWh, 10^4 m3, t, GJ")
    flow: Literal["input", "renewable", "delivered", "export"] = Field(
        "input", description="input: bought or received; renewable: self-generated renewable electricity; "
        "delivered: passed on to another enterprise of the park; export: supplied outside the park")
    usage: Literal["production", "non_production", "feedstock"] = "production"
    production_unit: str = Field("", description="production unit id, for per-unit results and per-product intensity")
    label: str = Field("", description="a name for the line (meter, invoice, ledger account)")

    @model_validator(mode="after")
    def _checks(self) -> EnergyLine:
        if self.quantity < 0:
            raise ValueError(f"quantity {self.quantity} is negative; state a deduction with flow delivered/export")
        if self.flow == "renewable" and self.carrier is not Carrier.electricity:
            raise ValueError("flow renewable is for self-generated electricity only")
        canonical = CARRIER_UNITS[self.carrier].counter
        try:
            convert(1.0, self.unit, canonical)
        except (UnitMismatch, ValueError) as exc:
            raise ValueError(f"unit {self.unit!r} cannot be converted to {canonical} for {self.carrier.value}: {exc}") from None
        return self

    def canonical_quantity(self) -> float:
        return convert(self.quantity, self.unit, CARRIER_UNITS[self.carrier].counter)


class ProcessLine(_Strict):
    material: str = Field(description="subject of a process_emission_factor, e.g. CaCO3")
    quantity: float = Field(ge=0)
    unit: str = "t"
    fraction: float = Field(1.0, gt=0, le=1, description="calcination or conversion fraction")
    production_unit: str = ""


class Product(_Strict):
    product: str
    quantity: float = Field(gt=0)
    unit: str = Field(description="unit of output, e.g. t, pcs, m2")
    production_unit: str = Field("", description="the unit that makes it: its energy is the product's energy")


class Production(_Strict):
    output_value: float | None = Field(None, ge=0, description="总产值 [万元]")
    value_added: float | None = Field(None, ge=0, description="增加值 [万元]")
    products: list[Product] = Field(default_factory=list)


class InventoryEnterprise(_Strict):
    id: str = Field(min_length=1)
    name: str = ""
    energy: list[EnergyLine] = Field(default_factory=list)
    process: list[ProcessLine] = Field(default_factory=list)
    green_electricity_kwh: float = Field(0.0, ge=0, description="green-power contracts and GECs (1 GEC = 1 000 kWh)")
    production: Production = Field(default_factory=Production)


class Inventory(_Strict):
    """An offline inventory for one period."""

    period_start: dt.date = Field(description="first day of the period (Asia/Shanghai)")
    period_end: dt.date = Field(description="day after the last day of the period")
    options: AccountingOptions = Field(default_factory=AccountingOptions)
    factor_overrides: list[Factor] = Field(default_factory=list, description="park factors, each with its source")
    enterprises: list[InventoryEnterprise] = Field(min_length=1)

    @model_validator(mode="after")
    def _checks(self) -> Inventory:
        if self.period_end <= self.period_start:
            raise ValueError(f"period_end {self.period_end} is not after period_start {self.period_start}")
        ids = [e.id for e in self.enterprises]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup or PARK_ENTITY in ids:
            raise ValueError(f"enterprise ids must be unique and not {PARK_ENTITY!r}: {sorted(dup or {PARK_ENTITY})}")
        return self


def load_inventory(path: Path) -> Inventory:
    """Read a JSON or YAML inventory; errors name the file, the field path and the value."""
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read: {exc}") from exc
    return parse_inventory(data, str(path))


def parse_inventory(data: Any, where: str = "<request>") -> Inventory:
    try:
        return Inventory.model_validate(data)
    except ValidationError as exc:
        errs = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (value {e.get('input')!r:.80})"
                         for e in exc.errors())
        raise ValueError(f"{where}: {errs}") from None


def inventory_frames(inv: Inventory) -> dict[str, pd.DataFrame]:
    """The ledger, process, green and production frames of an inventory (enterprises and park)."""
    period = pd.Timestamp(inv.period_start).tz_localize(TZ)
    ledger, process, green, production = [], [], [], []
    for ent in inv.enterprises:
        for i, line in enumerate(ent.energy):
            sign = -1.0 if line.flow in ("delivered", "export") else 1.0
            label = line.label or f"{ent.id}.energy[{i}]"
            # the park is the sum of its enterprises: a delivered line cancels the receiver's input
            for entity in (ent.id, PARK_ENTITY):
                ledger.append((period, entity, ent.id, line.production_unit, label, label, line.carrier.value,
                               line.flow, line.usage, sign * line.canonical_quantity()))
        for pl in ent.process:
            qty = convert(pl.quantity, pl.unit, "t")
            for entity in (ent.id, PARK_ENTITY):
                process.append((period, entity, ent.id, pl.production_unit, pl.material, qty, pl.fraction))
        if ent.green_electricity_kwh:
            green.append((period, ent.id, ent.green_electricity_kwh))
            green.append((period, PARK_ENTITY, ent.green_electricity_kwh))
        prod = ent.production
        for p in prod.products:
            production.append((period, ent.id, p.product, p.quantity, p.unit, None, None, p.production_unit))
        if prod.output_value is not None or prod.value_added is not None:
            production.append((period, ent.id, "", None, "", prod.output_value, prod.value_added, ""))
    ledger_df = pd.DataFrame(ledger, columns=["period", "entity", "enterprise", "unit", "meter", "point", "carrier",
                                              "flow", "usage", "quantity"])
    output_value = [e.production.output_value for e in inv.enterprises if e.production.output_value is not None]
    value_added = [e.production.value_added for e in inv.enterprises if e.production.value_added is not None]
    if output_value or value_added:
        production.append((period, PARK_ENTITY, "", None, "", sum(output_value) if output_value else None,
                           sum(value_added) if value_added else None, ""))
    prod_df = pd.DataFrame(production, columns=["period", "entity", "product", "quantity", "product_unit",
                                                "output_value", "value_added", "unit"])
    return {
        "ledger": ledger_df,
        "process": pd.DataFrame(process, columns=["period", "entity", "enterprise", "unit", "material", "quantity",
                                                  "fraction"]),
        "green": pd.DataFrame(green, columns=["period", "entity", "kwh"]),
        "production": prod_df,
    }


def evaluate(inv: Inventory, lib: FactorLibrary | None = None) -> Accounts:
    """Account an inventory with the shipped factors plus its own overrides."""
    lib = (lib or FactorLibrary.shipped()).with_overrides(inv.factor_overrides)
    f = inventory_frames(inv)
    return account(f["ledger"], lib, inv.options, process=f["process"], green_kwh=f["green"],
                   production=f["production"])


def inventory_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`Inventory` (committed as ``data/inventory.schema.json``)."""
    schema = Inventory.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Lingtan offline inventory"
    return schema
