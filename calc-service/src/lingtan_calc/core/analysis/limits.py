"""Per-product energy consumption against the national 单位产品能源消耗限额 standards (docs/analysis.md §7).

A limit file (YAML, ``calc-service/src/lingtan_calc/data/limits/national.yaml``, and one a park
names with ``LINGTAN_LIMITS_FILE``) lists limits, each one indicator of one product: the names a
production record may carry, the unit (kgce per unit of product), the grades 1级 ≤ 2级 ≤ 3级
(3级 is the 限定值 an existing plant must meet) and the standard with its edition, clause and
confidence. :func:`load_limit_file` reports a bad file naming the file, the field and the value.

:func:`compare_with_limits` turns the accounting's per-product energy (the numerator and
denominator of ``energy_per_product``, docs/accounting.md) into the specific consumption
[kgce/t], the grade reached and the gaps to the limit and to grade 1.

References
----------
GB/T 2589-2020 综合能耗计算通则, 3.6 (单位产品综合能耗) and 4 (计算原则).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lingtan_calc.core.analysis.datafile import load_entries

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "limits"
#: product units a production record may use, in tonnes [t per unit]
MASS_UNITS = {"t": 1.0, "吨": 1.0, "kg": 1e-3, "千克": 1e-3, "万t": 1e4, "万吨": 1e4}
COMPARE_COLUMNS = ["entity", "product", "limit_id", "standard", "output", "output_unit", "tce", "specific",
                   "unit", "grade_1", "grade_2", "grade_3", "grade", "compliant", "gap_to_limit", "gap_to_grade_1",
                   "excess_tce", "to_grade_1_tce", "confidence", "conditions"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Grades(_Strict):
    """The grades [kgce per unit of product]; lower is better. ``grade_3`` is the 限定值."""

    grade_1: float
    grade_2: float | None = None
    grade_3: float

    @model_validator(mode="after")
    def _order(self) -> Grades:
        middle = self.grade_2 if self.grade_2 is not None else self.grade_1
        if not self.grade_1 <= middle <= self.grade_3:
            raise ValueError(f"grades must run grade_1 <= grade_2 <= grade_3, got {self.grade_1}, "
                             f"{self.grade_2}, {self.grade_3}")
        return self


class LimitSource(_Strict):
    standard: str = Field(min_length=3)  # number and edition, e.g. "GB 16780-2021"
    title: str = ""
    clause: str = Field(min_length=1)
    confidence: str = Field(min_length=1)


class ProductLimit(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    product: str
    names: list[str] = Field(min_length=1)
    indicator: Literal["comprehensive_energy"] = "comprehensive_energy"  # 单位产品综合能耗
    unit: str = "kgce/t"
    grades: Grades
    conditions: str = ""
    source: LimitSource

    @field_validator("unit")
    @classmethod
    def _unit(cls, unit: str) -> str:
        energy, _, per = unit.partition("/")
        if energy != "kgce" or per not in MASS_UNITS:
            raise ValueError(f"unit {unit!r} is not kgce per a unit of mass ({', '.join(MASS_UNITS)})")
        return unit

    @property
    def per_tonne(self) -> float:
        """The limit's product unit in tonnes."""
        return MASS_UNITS[self.unit.partition("/")[2]]


class LimitFileError(ValueError):
    """A limit file that cannot be used; the message names the file, field and value."""


def load_limit_file(path: Path) -> list[ProductLimit]:
    """The limits of ``path``; raises :class:`LimitFileError` naming file, field and value."""
    limits = load_entries(path, "limits", ProductLimit, LimitFileError)
    _unique(path, limits)
    return limits


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


def _unique(path: Path | str, limits: list[ProductLimit]) -> None:
    ids: dict[str, int] = {}
    names: dict[str, str] = {}
    for i, lim in enumerate(limits):
        if lim.id in ids:
            raise LimitFileError(f"{path}: limits[{i}].id: {lim.id!r} is also limits[{ids[lim.id]}]")
        ids[lim.id] = i
        for name in lim.names:
            other = names.setdefault(_key(name), lim.id)
            if other != lim.id:
                raise LimitFileError(f"{path}: limits[{i}].names: {name!r} is also a name of {other!r}")


def default_limits() -> list[ProductLimit]:
    """The shipped limits (docs/analysis.md §7)."""
    return load_limit_file(DATA_DIR / "national.yaml")


def merge_limits(shipped: list[ProductLimit], park: list[ProductLimit], park_file: Path | str) -> list[ProductLimit]:
    """The shipped limits with a park's: a park limit with a shipped id replaces it, the others are added."""
    own = {lim.id for lim in park}
    merged = [lim for lim in shipped if lim.id not in own] + park
    _unique(park_file, merged)  # a park name that another (shipped) limit already has is an error
    return merged


def limit_for(limits: list[ProductLimit], product: str) -> ProductLimit | None:
    """The limit whose names hold ``product`` (case and spacing ignored), or None."""
    key = _key(product)
    return next((lim for lim in limits if key in {_key(n) for n in lim.names}), None)


def grade_of(specific: float, grades: Grades) -> int | None:
    """The best grade ``specific`` [limit unit] reaches: 1, 2 or 3; None above grade 3 (over the limit)."""
    for number, bound in ((1, grades.grade_1), (2, grades.grade_2), (3, grades.grade_3)):
        if bound is not None and specific <= bound:
            return number
    return None


def compare_with_limits(per_product: pd.DataFrame, limits: list[ProductLimit]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each product's specific consumption against its limit.

    Parameters
    ----------
    per_product : DataFrame
        ``entity``, ``product``, ``output_unit``, ``tce`` [tce] and ``output`` [output_unit]: the
        energy attributed to the product and its qualified output over the range.
    limits : list of ProductLimit

    Returns
    -------
    compared : DataFrame of :data:`COMPARE_COLUMNS`
        ``specific`` [kgce per the limit's unit]; ``grade`` 1, 2, 3 or NaN (over the limit);
        ``gap_to_limit`` and ``gap_to_grade_1`` = specific − grade [kgce per unit], negative when
        better; ``excess_tce`` and ``to_grade_1_tce`` the energy above grade 3 and above grade 1 [tce].
    unmatched : DataFrame
        ``entity``, ``product``, ``output_unit`` and ``reason``: products with no limit, or whose
        output unit is no unit of mass.
    """
    rows, unmatched = [], []
    for r in per_product.itertuples():
        lim = limit_for(limits, r.product)
        if lim is None:
            unmatched.append((r.entity, r.product, r.output_unit, "no limit for this product"))
            continue
        if r.output_unit not in MASS_UNITS:
            unmatched.append((r.entity, r.product, r.output_unit,
                              f"output unit {r.output_unit!r} is not one of {', '.join(MASS_UNITS)}"))
            continue
        if not r.output > 0:
            unmatched.append((r.entity, r.product, r.output_unit, f"output {r.output!r} is not positive"))
            continue
        units = r.output * MASS_UNITS[r.output_unit] / lim.per_tonne  # output in the limit's unit
        specific = r.tce * 1000.0 / units
        g = lim.grades
        grade = grade_of(specific, g)
        rows.append((r.entity, r.product, lim.id, lim.source.standard, r.output, r.output_unit, r.tce, specific,
                     lim.unit, g.grade_1, g.grade_2, g.grade_3, np.nan if grade is None else grade, grade is not None,
                     specific - g.grade_3, specific - g.grade_1, max(specific - g.grade_3, 0.0) * units / 1000.0,
                     max(specific - g.grade_1, 0.0) * units / 1000.0, lim.source.confidence, lim.conditions))
    return (pd.DataFrame(rows, columns=COMPARE_COLUMNS),
            pd.DataFrame(unmatched, columns=["entity", "product", "output_unit", "reason"]))
