"""Offline inventories: period quantities per enterprise and carrier, accounted like metered data.

This is how non-metered data and annual reporting enter Lingtan (``lingtan accounting
evaluate FILE`` and ``POST /api/v1/accounting/evaluate``). An inventory lists, for one
period, each enterprise's energy by carrier (any unit pint can convert to the carrier's
canonical unit), its process activities, its green-electricity claims and its production.
It becomes the same ledger the metered path builds, and goes through the same
:func:`lingtan_calc.core.accounting.results.account`; the park is the sum of the enterprises.

The input format is :class:`Inventory`; its JSON Schema is committed as
``calc-service/src/lingtan_calc/data/inventory.schema.json`` (regenerate with ``lingtan accounting schema``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lingtan.park.carriers import CARRIER_UNITS, Carrier
from lingtan_calc.core.accounting.boundary import PARK_ENTITY
from lingtan_calc.core.accounting.convert import LIQUID_FUELS, AccountingOptions, mass_per_unit
from lingtan_calc.core.accounting.factors import Factor, FactorLibrary, FactorNotFound
from lingtan_calc.core.accounting.results import Accounts, account
from lingtan_calc.core.units import UnitMismatch, convert

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "data" / "inventory.schema.json"  # lingtan_calc/data
TZ = "Asia/Shanghai"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InventoryError(ValueError):
    """An inventory that cannot be accounted as given; the message names the field and value,
    ``field`` is the path of the (first) offending field."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        if field is None and re.match(r"^(factor_overrides|enterprises)\.\d+[\w.]*:", message):
            field = message.split(":", 1)[0]
        self.field = field


class EnergyLine(_Strict):
    """One quantity of one carrier crossing the enterprise's boundary in the period."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        # flow renewable is for self-generated electricity only (checked in _checks as well)
        "if": {"properties": {"flow": {"const": "renewable"}}, "required": ["flow"]},
        "then": {"properties": {"carrier": {"const": "electricity"}}},
    })

    carrier: Carrier
    quantity: float = Field(ge=0, description="physical quantity in `unit`, never negative: a deduction is stated "
                                              "by `flow`, not a sign")
    unit: str = Field(min_length=1, description=(
        "any unit convertible to the carrier's canonical unit (electricity kWh, heat and cooling GJ, natural gas "
        "and water m3, steam, coal, LPG and biomass t, diesel and gasoline L), e.g. MWh, 10^4 m3, GJ; diesel and "
        "gasoline also by mass (t, kg), converted with the fuel's density factor"))
    flow: Literal["input", "renewable", "delivered", "export"] = Field(
        "input", description="input: bought or received; renewable: self-generated renewable electricity; "
        "delivered: passed on to another enterprise of the park; export: supplied outside the park")
    usage: Literal["production", "non_production", "feedstock"] = "production"
    production_unit: str = Field("", description="production unit id, for per-unit results and per-product intensity")
    label: str = Field("", description="a name for the line (meter, invoice, ledger account)")

    @model_validator(mode="after")
    def _checks(self) -> EnergyLine:
        if self.flow == "renewable" and self.carrier is not Carrier.electricity:
            raise ValueError("flow renewable is for self-generated electricity only")
        if self.by_mass:
            return self
        canonical = CARRIER_UNITS[self.carrier].counter
        try:
            convert(1.0, self.unit, canonical)
        except (UnitMismatch, ValueError) as exc:
            also = " (or t, kg)" if self.carrier in LIQUID_FUELS else ""
            raise ValueError(f"unit {self.unit!r} cannot be converted to {canonical}{also} for "
                             f"{self.carrier.value}: {exc}") from None
        return self

    @property
    def by_mass(self) -> bool:
        """A liquid fuel stated by mass (GB/T 2589 and the NDRC guidelines state them per kg)."""
        if self.carrier not in LIQUID_FUELS:
            return False
        try:
            convert(1.0, self.unit, "kg")
        except (UnitMismatch, ValueError):
            return False
        return True

    def canonical_quantity(self, lib: FactorLibrary | None = None, on: dt.date | None = None,
                           region: str = "CN") -> float:
        """The quantity in the carrier's canonical unit; a liquid fuel by mass needs ``lib`` for its density."""
        if not self.by_mass:
            return convert(self.quantity, self.unit, CARRIER_UNITS[self.carrier].counter)
        if lib is None or on is None:
            raise InventoryError(f"{self.carrier.value} in {self.unit} needs the density factor to reach litres")
        kg_per_l = mass_per_unit(self.carrier, on, lib, region).value
        return convert(self.quantity, self.unit, "kg") / kg_per_l


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
    id: str = Field(min_length=1, json_schema_extra={"not": {"const": PARK_ENTITY}},
                    description="unique within the inventory; not 'park' (the park is the sum of the enterprises)")
    name: str = ""
    energy: list[EnergyLine] = Field(default_factory=list)
    process: list[ProcessLine] = Field(default_factory=list)
    green_electricity_kwh: float = Field(0.0, ge=0, description="green-power contracts and GECs (1 GEC = 1 000 kWh)")
    production: Production = Field(default_factory=Production)


class Inventory(_Strict):
    """An offline inventory for one period."""

    period_start: dt.date = Field(description="first day of the period (Asia/Shanghai)")
    period_end: dt.date = Field(description="day after the last day of the period; after period_start")
    options: AccountingOptions = Field(default_factory=AccountingOptions)
    factor_overrides: list[Factor] = Field(default_factory=list, description=(
        "park factors, each with its source, marked override: true with author and reason, each with an id of "
        "its own (not a shipped factor's id, not repeated)"))
    enterprises: list[InventoryEnterprise] = Field(min_length=1)

    @model_validator(mode="after")
    def _checks(self) -> Inventory:
        if self.period_end <= self.period_start:
            raise ValueError(f"period_end {self.period_end} is not after period_start {self.period_start}")
        ids = [e.id for e in self.enterprises]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup or PARK_ENTITY in ids:
            raise ValueError(f"enterprise ids must be unique and not {PARK_ENTITY!r}: {sorted(dup or {PARK_ENTITY})}")
        seen: dict[str, int] = {}
        for i, f in enumerate(self.factor_overrides):
            if not f.override:
                raise ValueError(f"factor_overrides.{i}.override: factor {f.id!r} is not marked override: true")
            if f.id in seen:
                raise ValueError(f"factor_overrides.{i}.id: {f.id!r} repeats factor_overrides.{seen[f.id]}")
            seen[f.id] = i
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
    """Validate an inventory; :class:`InventoryError` names ``where``, every field path and value."""
    try:
        return Inventory.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        errs = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(inventory)'}: {e['msg']}"
                         + (f" (value {e.get('input')!r:.80})" if e["loc"] else "") for e in errors)
        loc = ".".join(str(p) for p in errors[0]["loc"])
        if not loc:  # a model-level check names its field at the start of its message
            found = re.search(r"((?:factor_overrides|enterprises)\.\d+[\w.]*):", errors[0]["msg"])
            loc = found.group(1) if found else ""
        raise InventoryError(f"{where}: {errs}", loc or None) from None


def check_overrides(inv: Inventory, shipped: FactorLibrary) -> None:
    """Refuse an override that reuses a shipped factor's id (it would not be an override of its own)."""
    known = {f.id for f in shipped}
    for i, f in enumerate(inv.factor_overrides):
        if f.id in known:
            raise InventoryError(f"factor_overrides.{i}.id: {f.id!r} is a shipped factor id; give the override an "
                                 "id of its own (it takes precedence for its kind, subject, region and validity)")


def inventory_frames(inv: Inventory, lib: FactorLibrary | None = None) -> dict[str, pd.DataFrame]:
    """The ledger, process, green and production frames of an inventory (enterprises and park).

    ``lib`` (with the inventory's overrides) converts liquid fuels stated by mass to litres."""
    period = pd.Timestamp(inv.period_start).tz_localize(TZ)
    ledger, process, green, production = [], [], [], []
    for n, ent in enumerate(inv.enterprises):
        for i, line in enumerate(ent.energy):
            sign = -1.0 if line.flow in ("delivered", "export") else 1.0
            label = line.label or f"{ent.id}.energy[{i}]"
            try:
                quantity = line.canonical_quantity(lib, inv.period_start, inv.options.grid_region)
            except FactorNotFound as exc:
                raise InventoryError(f"enterprises.{n}.energy.{i} ({ent.id}): {line.quantity:g} {line.unit} of "
                                     f"{line.carrier.value}: {exc}") from None
            # the park is the sum of its enterprises: a delivered line cancels the receiver's input
            for entity in (ent.id, PARK_ENTITY):
                ledger.append((period, entity, ent.id, line.production_unit, label, label, line.carrier.value,
                               line.flow, line.usage, sign * quantity))
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
    """Account an inventory with the shipped factors plus its own overrides.

    Raises :class:`InventoryError` for overrides that clash with the shipped library.
    """
    shipped = lib or FactorLibrary.shipped()
    check_overrides(inv, shipped)
    lib = shipped.with_overrides(inv.factor_overrides)
    f = inventory_frames(inv, lib)
    return account(f["ledger"], lib, inv.options, process=f["process"], green_kwh=f["green"],
                   production=f["production"])


def inventory_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`Inventory` (committed as ``data/inventory.schema.json``)."""
    schema = Inventory.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Lingtan offline inventory"
    return schema
