"""单位产品能源消耗限额: the shipped limit data, grading against hand-computed values, and bad limit files."""

from __future__ import annotations

import pandas as pd
import pytest

from lingtan_calc.core.analysis.limits import (
    Grades,
    LimitFileError,
    compare_with_limits,
    default_limits,
    grade_of,
    limit_for,
    load_limit_file,
    merge_limits,
)

CLINKER_ROW = {"entity": "B", "product": "熟料", "output_unit": "t"}


def test_shipped_limits_name_their_standard_grade_and_confidence() -> None:
    limits = default_limits()
    assert len({lim.product for lim in limits}) >= 5
    for lim in limits:
        assert lim.source.standard.startswith("GB ") and "-" in lim.source.standard, lim.id
        assert lim.source.clause and lim.source.confidence, lim.id
        assert lim.grades.grade_1 <= lim.grades.grade_3
    clinker = limit_for(limits, " 水泥熟料 ")
    assert clinker.id == "gb16780-2021.clinker" and clinker.source.standard == "GB 16780-2021"
    assert limit_for(limits, "Clinker") is clinker  # case and spacing ignored
    assert limit_for(limits, "注塑件") is None


def test_grade_boundaries() -> None:
    g = Grades(grade_1=100, grade_2=107, grade_3=117)
    assert [grade_of(v, g) for v in (99.9, 100.0, 100.1, 107.0, 116.99, 117.0, 117.01)] == [1, 1, 2, 2, 3, 3, None]
    assert grade_of(63.0, Grades(grade_1=61, grade_3=72)) == 3  # no grade 2 in the standard: 1 or 3
    with pytest.raises(ValueError, match="grade_1 <= grade_2 <= grade_3"):
        Grades(grade_1=100, grade_2=120, grade_3=117)


def test_compare_by_hand() -> None:
    found = pd.DataFrame([
        {**CLINKER_ROW, "tce": 1_200.0, "output": 10_000.0},  # 120 kgce/t: over the 117 limit
        {"entity": "C", "product": "clinker", "output_unit": "万t", "tce": 1_040.0, "output": 1.0},  # 104: grade 2
        {"entity": "C", "product": "烟煤制甲醇", "output_unit": "kg", "tce": 1_350.0, "output": 1_000_000.0},  # 1350: 1
        {"entity": "C", "product": "注塑件", "output_unit": "t", "tce": 5.0, "output": 10.0},
        {"entity": "C", "product": "铝锭", "output_unit": "m3", "tce": 5.0, "output": 10.0},
    ])
    compared, unmatched = compare_with_limits(found, default_limits())
    over, second, first = (compared.iloc[i] for i in range(3))
    assert over["specific"] == pytest.approx(120.0) and not over["compliant"] and pd.isna(over["grade"])
    assert over["gap_to_limit"] == pytest.approx(3.0)
    assert over["excess_tce"] == pytest.approx(3.0 * 10_000 / 1000)  # 30 tce above the limit
    assert over["to_grade_1_tce"] == pytest.approx(20.0 * 10_000 / 1000)
    assert second["specific"] == pytest.approx(104.0) and second["grade"] == 2 and second["excess_tce"] == 0.0
    assert second["to_grade_1_tce"] == pytest.approx(4.0 * 10_000 / 1000)
    assert first["specific"] == pytest.approx(1_350.0) and first["grade"] == 1 and first["standard"] == "GB 29436-2023"
    assert list(unmatched["product"]) == ["注塑件", "铝锭"]
    assert unmatched.iloc[0]["reason"] == "no limit for this product" and "'m3'" in unmatched.iloc[1]["reason"]


def _write(tmp_path, text: str):
    path = tmp_path / "own_limits.yaml"
    path.write_text(text, encoding="utf-8")
    return path


OWN = """
limits:
  - id: {id}
    product: 熟料 (省标)
    names: [{name}]
    unit: {unit}
    grades: {{grade_1: {g1}, grade_2: 100, grade_3: 110}}
    source: {{standard: DB32/T 0000-2024, clause: "table 1", confidence: "the park's own copy"}}
"""


def test_a_park_adds_or_replaces_limits(tmp_path) -> None:
    own = load_limit_file(_write(tmp_path, OWN.format(id="gb16780-2021.clinker", name="熟料", unit="kgce/t", g1=95)))
    merged = merge_limits(default_limits(), own, "own_limits.yaml")
    assert limit_for(merged, "熟料").grades.grade_3 == 110 and limit_for(merged, "水泥熟料") is None
    assert len(merged) == len(default_limits())
    clash = load_limit_file(_write(tmp_path, OWN.format(id="park.clinker", name="熟料", unit="kgce/t", g1=95)))
    with pytest.raises(LimitFileError, match=r"own_limits.yaml: limits\[\d+\].names: '熟料' is also a name of "
                                             r"'gb16780-2021.clinker'"):
        merge_limits(default_limits(), clash, "own_limits.yaml")


@pytest.mark.parametrize(("unit", "g1", "message"), [
    ("kgce/t", 105, r"limits\[0\].grades: grades must run grade_1 <= grade_2 <= grade_3, got 105.0, 100.0, 110.0"),
    ("kWh/t", 95, r"limits\[0\].unit: unit 'kWh/t' is not kgce per a unit of mass"),
])
def test_bad_limit_file_names_file_field_and_value(tmp_path, unit, g1, message) -> None:
    path = _write(tmp_path, OWN.format(id="park.clinker", name="熟料", unit=unit, g1=g1))
    with pytest.raises(LimitFileError, match=message) as err:
        load_limit_file(path)
    assert str(err.value).startswith(str(path))
    with pytest.raises(LimitFileError, match="expected a mapping with a 'limits' list"):
        load_limit_file(_write(tmp_path, "- 1\n"))
