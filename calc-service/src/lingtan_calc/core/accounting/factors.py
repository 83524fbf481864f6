"""The factor library: every coefficient the accounting uses, with its provenance.

Shipped factors are YAML files in ``calc-service/src/lingtan_calc/data/factors/`` (one per document); a park
adds overrides (a measured NCV, a supplier's steam condition, a year's 等价值), each with
its own source, validity period, author and reason. :meth:`FactorLibrary.resolve` picks the
one factor that applies to a kind, subject, region, basis and date; overrides win over
shipped factors, a regional factor over the national one, and a later ``valid_from`` over an
earlier one. Units are checked with pint when a factor is loaded, and again when it is applied
(see :mod:`lingtan_calc.core.units`).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lingtan_calc.core.units import parse_unit

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "factors"  # lingtan_calc/data
NATIONAL = "CN"


class FactorKind(StrEnum):
    """What a factor converts, and the dimension its unit must have."""

    coal_equivalent = "coal_equivalent"  # 折标准煤系数 [kgce per physical unit]
    electricity_equivalent = "electricity_equivalent"  # 等价值 of electricity, per year [kgce/kWh]
    kgce_heat_content = "kgce_heat_content"  # 1 kgce = 29 307 kJ [kJ/kgce]
    ncv = "ncv"  # net calorific value [energy per physical unit]
    carbon_content = "carbon_content"  # carbon per unit heat [tC/GJ]
    oxidation = "oxidation"  # oxidation rate [%]
    emission_factor = "emission_factor"  # direct factor [tCO2 per unit], e.g. purchased heat
    grid_emission_factor = "grid_emission_factor"  # [tCO2/MWh]
    process_emission_factor = "process_emission_factor"  # [tCO2 per t of material]
    gwp = "gwp"  # [dimensionless]
    steam_enthalpy = "steam_enthalpy"  # [kJ/kg]
    feedwater_enthalpy = "feedwater_enthalpy"  # [kJ/kg]
    density = "density"  # [kg/L], liquid fuels metered by volume


#: the dimensionality each kind's unit must have (checked on load)
_DIMENSION = {
    FactorKind.kgce_heat_content: "kJ/kgce",
    FactorKind.electricity_equivalent: "kgce/kWh",
    FactorKind.carbon_content: "tC/GJ",
    FactorKind.oxidation: "dimensionless",
    FactorKind.grid_emission_factor: "tCO2/MWh",
    FactorKind.gwp: "dimensionless",
    FactorKind.steam_enthalpy: "kJ/kg",
    FactorKind.feedwater_enthalpy: "kJ/kg",
    FactorKind.density: "kg/L",
}


#: the physical unit a carrier's coal-equivalent coefficient and NCV are stated per (as the
#: accounting applies them, lingtan_calc.core.accounting.convert.coal_equivalent): a coefficient of another
#: dimension (kgce/kWh for natural gas) is refused when it is loaded
PER_UNIT = {"electricity": "kWh", "heat": "MJ", "steam": "t", "natural_gas": "m3", "diesel": "kg", "gasoline": "kg",
            "coal": "kg", "lpg": "kg", "biomass": "kg"}
_PER_UNIT_KINDS = {FactorKind.coal_equivalent: "kgce", FactorKind.ncv: "kJ"}


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    document: str = Field(min_length=1)  # standard or document, with its number
    edition: str = Field(min_length=1)  # edition, year or publication date
    clause: str = ""  # table, annex or clause
    url: str | None = None


class Factor(BaseModel):
    """One coefficient with its provenance."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={
        # a park override records who made it and why (checked in _checks as well)
        "if": {"properties": {"override": {"const": True}}, "required": ["override"]},
        "then": {"required": ["author", "reason"],
                 "properties": {"author": {"type": "string", "minLength": 1}, "reason": {"type": "string", "minLength": 1}}},
    })

    id: str = Field(pattern=r"^[A-Za-z0-9_.:-]+$")
    kind: FactorKind
    subject: str = Field(min_length=1)  # carrier, fuel, gas or material
    value: float = Field(ge=0, description="never negative; an oxidation rate lies in (0, 100 %]")
    unit: str = Field(description="a unit of the dimension the kind needs (coal_equivalent: kgce per the carrier's "
                                  "unit, e.g. kgce/kWh, kgce/m3, kgce/kg; ncv: energy per that unit; "
                                  "grid_emission_factor: tCO2/MWh; density: kg/L; ...)")
    basis: str | None = None  # dangliang/dengjia, average/excluding_market_non_fossil/ets, AR5 ...
    region: str = NATIONAL
    valid_from: dt.date
    valid_to: dt.date | None = Field(None, description="exclusive, after valid_from; none = open")
    data_year: int | None = None
    source: Source
    confidence: str = Field(min_length=1)
    # park overrides only
    override: bool = False
    author: str | None = None
    reason: str | None = None
    recorded_at: dt.datetime | None = None

    @field_validator("unit")
    @classmethod
    def _unit_parses(cls, v: str) -> str:
        parse_unit(v)
        return v

    @model_validator(mode="after")
    def _checks(self) -> Factor:
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError(f"valid_to {self.valid_to} is not after valid_from {self.valid_from}")
        want = _DIMENSION.get(self.kind)
        if want is None and self.kind in _PER_UNIT_KINDS and self.subject in PER_UNIT:
            want = f"{_PER_UNIT_KINDS[self.kind]}/{PER_UNIT[self.subject]}"
        if want is not None:
            got, need = parse_unit(self.unit).dimensionality, parse_unit(want).dimensionality
            if got != need:
                raise ValueError(f"factor {self.id!r}: unit {self.unit!r} has dimension {got}, a {self.kind.value} "
                                 f"factor for {self.subject} needs {want} (or another unit of that dimension)")
        if self.kind in (FactorKind.oxidation,) and not 0 < parse_unit(self.unit).to("").magnitude * self.value <= 1:
            raise ValueError(f"oxidation rate {self.value} {self.unit} is not within (0, 100 %]")
        if self.override and not (self.author and self.reason):
            raise ValueError("a park override records its author and reason")
        return self

    def applies(self, on: dt.date) -> bool:
        return self.valid_from <= on and (self.valid_to is None or on < self.valid_to)

    def cite(self) -> str:
        """``document (edition), clause`` for reports and API answers."""
        clause = f", {self.source.clause}" if self.source.clause else ""
        return f"{self.source.document} ({self.source.edition}){clause}"


class FactorNotFound(LookupError):
    """No factor applies: the message says which kind, subject, region, basis and date."""


def load_factor_file(path: Path) -> list[Factor]:
    """Factors of one YAML file; file-level ``source``, ``region`` and ``valid_from`` are defaults.

    Errors name the file, the factor's position and id, and the field.
    """
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("factors"), list):
        raise ValueError(f"{path}: expected a mapping with a 'factors' list")
    defaults = {k: doc[k] for k in ("region", "valid_from") if k in doc}
    file_source = doc.get("source")
    out = []
    for i, raw in enumerate(doc["factors"]):
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: factors[{i}] is not a mapping")
        data: dict[str, Any] = {**defaults, **raw}
        if "source" not in data and file_source is not None:
            data["source"] = {**file_source, "clause": data.pop("clause", "")}
        elif "clause" in data:
            data["source"] = {**data["source"], "clause": data.pop("clause")}
        try:
            out.append(Factor.model_validate(data))
        except ValidationError as exc:
            errs = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(factor)'}: {e['msg']} "
                             f"(value {e.get('input')!r:.80})" for e in exc.errors())
            raise ValueError(f"{path}: factors[{i}] (id {raw.get('id')!r}): {errs}") from None
    return out


class FactorLibrary:
    """Shipped factors plus park overrides, with resolution by kind, subject, region, basis and date."""

    def __init__(self, factors: list[Factor], regions: dict[str, str] | None = None):
        self._by_id: dict[str, Factor] = {}
        for f in factors:
            self.add(f)
        #: region -> its parent region (province -> regional grid -> CN)
        self.regions = dict(regions or {})

    @classmethod
    def shipped(cls, directory: Path = DATA_DIR) -> FactorLibrary:
        factors: list[Factor] = []
        for path in sorted(directory.glob("*.yaml")):
            factors += load_factor_file(path)
        return cls(factors)

    def add(self, factor: Factor) -> None:
        if factor.id in self._by_id:
            raise ValueError(f"duplicate factor id {factor.id!r}")
        self._by_id[factor.id] = factor

    def __getitem__(self, factor_id: str) -> Factor:
        return self._by_id[factor_id]

    def __iter__(self):
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def with_overrides(self, overrides: list[Factor]) -> FactorLibrary:
        """A copy with park overrides added (each must be marked ``override`` with author and reason)."""
        lib = FactorLibrary(list(self._by_id.values()), self.regions)
        for f in overrides:
            if not f.override:
                raise ValueError(f"factor {f.id!r} is not marked as a park override")
            lib.add(f)
        return lib

    def _region_chain(self, region: str) -> list[str]:
        chain, seen = [], set()
        while region and region not in seen:
            chain.append(region)
            seen.add(region)
            region = self.regions.get(region, NATIONAL if region != NATIONAL else "")
        if NATIONAL not in chain:
            chain.append(NATIONAL)
        return chain

    def resolve(self, kind: FactorKind | str, subject: str, on: dt.date, *, region: str = NATIONAL,
                basis: str | None = None) -> Factor:
        """The factor that applies; :class:`FactorNotFound` says what was looked for."""
        kind = FactorKind(kind)
        candidates = [f for f in self._by_id.values()
                      if f.kind is kind and f.subject == subject and f.applies(on)
                      and (basis is None or f.basis == basis)]
        for reg in self._region_chain(region):
            here = [f for f in candidates if f.region == reg]
            if here:
                # overrides first, then the most recent start of validity
                return max(here, key=lambda f: (f.override, f.valid_from, f.id))
        what = f"{kind.value} for {subject!r}" + (f" (basis {basis})" if basis else "")
        known = sorted({f"{f.region} {f.valid_from}..{f.valid_to or 'open'}" for f in self._by_id.values()
                        if f.kind is kind and f.subject == subject and (basis is None or f.basis == basis)})
        hint = f"; factors of this kind and subject exist for {', '.join(known)}" if known else \
            "; none is in the library: add a park override with its source"
        raise FactorNotFound(f"no {what} applies on {on} in region {region}{hint}")
