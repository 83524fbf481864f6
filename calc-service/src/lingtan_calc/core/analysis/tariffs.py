"""Energy tariffs as data: time-of-use electricity, a demand or capacity charge, and other carriers.

A tariff file (YAML, ``calc-service/src/lingtan_calc/data/tariffs/``, or one a park names with
``LINGTAN_TARIFF_FILE``) lists tariffs, each with its source, the entities it applies to and its
validity. Electricity prices are per time-of-use band (尖峰 critical peak, 峰 peak, 平 flat,
谷 valley, 深谷 deep valley); the bands' hours are given per season (a set of months), as
windows of the Asia/Shanghai day that must cover the day exactly once. A band's price is
either a number [CNY/kWh] or a multiple of another band's price (the critical-peak price is
the peak price × 1.2 in Jiangsu, docs/analysis.md §2).

:func:`band_shares` gives, for every hour, the share of it in each band, so hourly energy
is costed exactly even where a band starts inside an hour (energy is taken as spread evenly
over the hour). :func:`load_tariff_file` reports a bad file naming the file, the field and
the value: overlapping or missing hours, a season that overlaps another, a price that refers
to a band without one, a tariff whose validity overlaps another's for the same entities.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lingtan_calc.core.analysis.datafile import load_entries

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "tariffs"
TZ = "Asia/Shanghai"
MINUTES_PER_DAY = 1440
ALL_ENTITIES = "*"


class Band(StrEnum):
    critical_peak = "critical_peak"  # 尖峰
    peak = "peak"  # 峰
    flat = "flat"  # 平
    valley = "valley"  # 谷
    deep_valley = "deep_valley"  # 深谷


BANDS = list(Band)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _minute(text: str) -> int:
    hours, _, minutes = text.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f"time {text!r} is not HH:MM")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) >= 60 or value > MINUTES_PER_DAY:
        raise ValueError(f"time {text!r} is not between 00:00 and 24:00")
    return value


class Window(_Strict):
    """``[start, end)`` of the local day in one band; ``end`` may be ``24:00``."""

    start: str
    end: str
    band: Band

    @model_validator(mode="after")
    def _order(self) -> Window:
        if _minute(self.end) <= _minute(self.start):
            raise ValueError(f"window {self.start}-{self.end}: end is not after start")
        return self


class Season(_Strict):
    name: str
    months: list[int] = Field(min_length=1)
    windows: list[Window] = Field(min_length=1)

    @field_validator("months")
    @classmethod
    def _months(cls, months: list[int]) -> list[int]:
        bad = [m for m in months if not 1 <= m <= 12]
        if bad:
            raise ValueError(f"months {bad} are not 1..12")
        return months

    @model_validator(mode="after")
    def _cover_day(self) -> Season:
        owner = np.full(MINUTES_PER_DAY, -1)
        for i, w in enumerate(self.windows):
            a, b = _minute(w.start), _minute(w.end)
            taken = np.flatnonzero(owner[a:b] >= 0)
            if taken.size:
                other = self.windows[owner[a + taken[0]]]
                raise ValueError(f"windows[{i}] {w.start}-{w.end} ({w.band.value}) overlaps "
                                 f"{other.start}-{other.end} ({other.band.value})")
            owner[a:b] = i
        gaps = np.flatnonzero(owner < 0)
        if gaps.size:
            first = int(gaps[0])
            raise ValueError(f"season {self.name!r}: the windows leave {first // 60:02d}:{first % 60:02d} "
                             f"(and {gaps.size} minutes in all) without a band")
        return self

    def minute_bands(self) -> np.ndarray:
        """The band index (into :data:`BANDS`) of every minute of the day."""
        out = np.empty(MINUTES_PER_DAY, dtype=int)
        for w in self.windows:
            out[_minute(w.start):_minute(w.end)] = BANDS.index(w.band)
        return out


class Multiple(_Strict):
    """A band price stated as another band's price × ``factor``."""

    of: Band
    factor: float = Field(gt=0)


class DemandCharge(_Strict):
    """基本电费: by the month's maximum demand [CNY/kW·month] or by contracted capacity [CNY/kVA·month].

    By maximum demand, an entity listed in ``contract_kw`` has declared a contract demand
    (合同最大需量) and pays for it: a month whose maximum demand exceeds ``excess_threshold`` × the
    contract pays the excess above that threshold ``excess_factor`` times on top (国家电网财〔2016〕633号,
    carrying out 发改办价格〔2016〕1583号: above 105 % of the contract, the part above 105 % is charged
    double; 1 source). An entity not listed pays for its actual maximum demand.
    """

    basis: Literal["max_demand", "capacity"]
    price: float = Field(ge=0)
    capacity_kva: float | None = Field(None, gt=0)  # for basis capacity: the transformer capacity charged
    contract_kw: dict[str, float] = Field(default_factory=dict)  # entity id -> contract demand [kW]
    excess_threshold: float = Field(1.05, ge=1.0)
    excess_factor: float = Field(2.0, ge=1.0)

    @model_validator(mode="after")
    def _capacity(self) -> DemandCharge:
        if self.basis == "capacity" and self.capacity_kva is None:
            raise ValueError("a capacity charge states capacity_kva")
        if self.contract_kw and self.basis != "max_demand":
            raise ValueError("contract_kw is a contract demand, which only a charge by max_demand has")
        bad = {k: v for k, v in self.contract_kw.items() if not v > 0}
        if bad:
            raise ValueError(f"contract_kw {bad} is not positive")
        return self

    def charged_kw(self, entity: str, peak_kw: float) -> float:
        """The kW the month is charged for, given its maximum demand: the contract plus the excess
        above the threshold × the factor, or the maximum demand without a contract."""
        contract = self.contract_kw.get(entity)
        if contract is None:
            return peak_kw
        return contract + self.excess_factor * max(0.0, peak_kw - self.excess_threshold * contract)


class Electricity(_Strict):
    prices: dict[Band, float | Multiple]  # CNY/kWh, or a multiple of another band
    seasons: list[Season] = Field(min_length=1)
    demand_charge: DemandCharge | None = None
    # what exported electricity is paid [CNY/kWh] (上网电价, e.g. PV surplus fed into the grid)
    export_price: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Electricity:
        seen: dict[int, str] = {}
        for s in self.seasons:
            for m in s.months:
                if m in seen:
                    raise ValueError(f"month {m} is in season {seen[m]!r} and in {s.name!r}")
                seen[m] = s.name
        missing = sorted(set(range(1, 13)) - set(seen))
        if missing:
            raise ValueError(f"months {missing} are in no season")
        for name, price in self.prices.items():
            if isinstance(price, Multiple) and not isinstance(self.prices.get(price.of), float | int):
                raise ValueError(f"prices.{name.value} is a multiple of {price.of.value!r}, which has no price of its own")
            if isinstance(price, float | int) and price < 0:
                raise ValueError(f"prices.{name.value} is negative: {price}")
        used = {w.band for s in self.seasons for w in s.windows}
        unpriced = sorted(b.value for b in used - set(self.prices))
        if unpriced:
            raise ValueError(f"bands {unpriced} have hours but no price")
        return self

    def price(self, band: Band) -> float:
        """The band's price [CNY/kWh]."""
        p = self.prices[band]
        return float(p.factor * self.prices[p.of]) if isinstance(p, Multiple) else float(p)


class Source(_Strict):
    document: str
    clause: str = ""
    confidence: str = ""  # as the reference marks it, e.g. "1 source", "unconfirmed"


class Tariff(_Strict):
    id: str
    name: str
    source: Source
    applies_to: list[str] = Field(default_factory=lambda: [ALL_ENTITIES])  # enterprise ids, or "*"
    valid_from: dt.date
    valid_to: dt.date | None = None  # exclusive; open when None
    currency: Literal["CNY"] = "CNY"
    electricity: Electricity
    # other carriers: price per canonical unit of the carrier [CNY/m3, CNY/t, CNY/GJ, CNY/L]
    carriers: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _validity(self) -> Tariff:
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError(f"valid_to {self.valid_to} is not after valid_from {self.valid_from}")
        bad = {k: v for k, v in self.carriers.items() if v < 0}
        if bad:
            raise ValueError(f"carrier prices {bad} are negative")
        return self

    def applies(self, entity: str, day: dt.date) -> bool:
        return ((ALL_ENTITIES in self.applies_to or entity in self.applies_to) and self.valid_from <= day
                and (self.valid_to is None or day < self.valid_to))


class TariffFileError(ValueError):
    """A tariff file that cannot be used; the message names the file, field and value."""


def load_tariff_file(path: Path) -> list[Tariff]:
    """The tariffs of ``path``; raises :class:`TariffFileError` naming file, field and value."""
    tariffs = load_entries(path, "tariffs", Tariff, TariffFileError)
    _no_overlaps(path, tariffs)
    return tariffs


def _no_overlaps(path: Path, tariffs: list[Tariff]) -> None:
    for i, a in enumerate(tariffs):
        for j, b in enumerate(tariffs[:i]):
            shared = set(a.applies_to) & set(b.applies_to) or (
                {ALL_ENTITIES} & (set(a.applies_to) | set(b.applies_to)) and set(a.applies_to) | set(b.applies_to))
            a_end, b_end = a.valid_to or dt.date.max, b.valid_to or dt.date.max
            if shared and a.valid_from < b_end and b.valid_from < a_end:
                raise TariffFileError(f"{path}: tariffs[{i}] ({a.id!r}, valid from {a.valid_from}) overlaps "
                                      f"tariffs[{j}] ({b.id!r}) for entities {sorted(shared)}")


def default_tariffs() -> list[Tariff]:
    """The shipped tariff file (the demo park's, docs/analysis.md §2)."""
    return load_tariff_file(DATA_DIR / "jiangsu_industrial.yaml")


def tariff_for(tariffs: list[Tariff], entity: str, day: dt.date) -> Tariff | None:
    """The tariff of ``entity`` on ``day``: an entity's own tariff before one for all entities."""
    own = [t for t in tariffs if entity in t.applies_to and t.applies(entity, day)]
    if own:
        return own[0]
    return next((t for t in tariffs if t.applies(entity, day)), None)


def band_shares(hours: pd.DatetimeIndex, tariff: Tariff) -> pd.DataFrame:
    """The share of each hour in each band [0..1], one column per band of :data:`BANDS`.

    ``hours`` are hour starts (tz-aware); an hour's share of a band is the minutes of that
    hour in the band / 60, in the season of the hour's local month.
    """
    local = hours.tz_convert(TZ)
    out = np.zeros((len(hours), len(BANDS)))
    for season in tariff.electricity.seasons:
        bands = season.minute_bands().reshape(24, 60)
        per_hour = np.stack([(bands == k).mean(axis=1) for k in range(len(BANDS))], axis=1)  # (24, bands)
        rows = np.isin(local.month, season.months)
        out[rows] = per_hour[local.hour[rows]]
    return pd.DataFrame(out, index=hours, columns=[b.value for b in BANDS])


def peak_valley_ratio(tariff: Tariff) -> float | None:
    """Peak price / valley price (发改价格〔2021〕1093号 asks ≥ 4 where the system's peak-valley
    gap exceeds 40 %, else ≥ 3); None when either band is missing."""
    prices = tariff.electricity.prices
    if Band.peak not in prices or Band.valley not in prices or tariff.electricity.price(Band.valley) == 0:
        return None
    return tariff.electricity.price(Band.peak) / tariff.electricity.price(Band.valley)
