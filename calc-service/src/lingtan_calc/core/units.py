"""Units of the accounting core (pint), with the dimensions that keep factors honest.

Standard coal equivalent, CO₂ and carbon are dimensions of their own rather than an energy
or a mass: a coefficient in kgce/kWh can then only be applied to an energy, a kgce/m³ only
to a volume, and a kWh never meets a kgce/m³ (the product does not reduce to kgce, and
:func:`convert` refuses it). 1 kgce is *defined* by GB/T 2589-2020 §8 as 29 307 kJ of net
calorific value; that relation is a factor in the library (``gbt2589.kgce_heat``), not a
unit identity, because 当量值 and 等价值 are different conversions of the same kWh.

References
----------
GB/T 2589-2020 综合能耗计算通则, 3.9 and ch. 8 (折标准煤系数, 1 kgce = 29 307 kJ).
"""

from __future__ import annotations

import re
from functools import lru_cache

import pint

_DEFINITIONS = """
kilogram_coal_equivalent = [coal_equivalent] = kgce
tonne_coal_equivalent = 1000 * kilogram_coal_equivalent = tce
kilogram_co2 = [carbon_dioxide] = kgCO2
tonne_co2 = 1000 * kilogram_co2 = tCO2
kilogram_co2e = kilogram_co2 = kgCO2e
tonne_co2e = 1000 * kilogram_co2 = tCO2e
kilogram_carbon = [carbon] = kgC
tonne_carbon = 1000 * kilogram_carbon = tC
yuan = [currency] = CNY
wan_yuan = 10000 * yuan = 万元
normal_cubic_metre = meter ** 3 = Nm3
piece = [product_count] = pcs
"""


@lru_cache(maxsize=1)
def registry() -> pint.UnitRegistry:
    """The one unit registry of the accounting core."""
    ureg = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
    for line in _DEFINITIONS.strip().splitlines():
        ureg.define(line)
    return ureg


#: spellings used in the park model and factor files, as whole tokens, and what pint calls them
_TOKENS = {
    "m3": "meter**3",
    "t": "metric_ton",
    "kWh_th": "kWh",
    "MWh_th": "MWh",
    "kW_th": "kW",
    "MW_th": "MW",
    "%": "percent",
}
_TOKEN_RE = re.compile(r"(?<![\w^.])(" + "|".join(re.escape(k) for k in sorted(_TOKENS, key=len, reverse=True))
                       + r")(?![\w^])")


@lru_cache(maxsize=512)
def parse_unit(text: str) -> pint.Quantity:
    """Parse a unit as written in a factor file or the park model (``kgce/kWh``, ``tCO2/10^4 Nm3``)."""
    expr = re.sub(r"10\^(\d+)\s+", r"1e\1 * ", text.strip())  # "10^4 Nm3" -> "1e4 * Nm3"
    expr = _TOKEN_RE.sub(lambda m: _TOKENS[m.group(1)], expr)
    # "a/1e4 * b" must divide by the product: parenthesise every denominator
    num, *dens = expr.split("/")
    expr = num + "".join(f"/({d.strip()})" for d in dens)
    try:
        return 1.0 * registry().parse_expression(expr)
    except (pint.errors.UndefinedUnitError, pint.errors.DefinitionSyntaxError, SyntaxError,
            AttributeError, TypeError) as exc:
        raise ValueError(f"unknown unit {text!r}: {exc}") from exc


class UnitMismatch(ValueError):
    """A quantity and a factor whose units do not combine to the expected result."""


def multiplier(value_unit: str, factor_unit: str, result_unit: str) -> float:
    """Number ``k`` such that ``x [value_unit] × f [factor_unit] = k·x·f [result_unit]``.

    Raises :class:`UnitMismatch` when the product does not have the dimension of
    ``result_unit`` (e.g. kWh × kgce/m³ → kgce).
    """
    product = parse_unit(value_unit) * parse_unit(factor_unit)
    target = parse_unit(result_unit)
    try:
        return float(product.to(target.units).magnitude / target.magnitude)
    except pint.errors.DimensionalityError as exc:
        raise UnitMismatch(f"{value_unit} × {factor_unit} is not a quantity in {result_unit} "
                           f"({product.dimensionality} vs {(1.0 * target).dimensionality})") from exc


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """``value`` in ``from_unit`` expressed in ``to_unit`` (same dimension, else :class:`UnitMismatch`)."""
    target = parse_unit(to_unit)
    try:
        return float((value * parse_unit(from_unit)).to(target.units).magnitude / target.magnitude)
    except pint.errors.DimensionalityError as exc:
        raise UnitMismatch(f"cannot express {from_unit} in {to_unit}") from exc
