"""Budgets by hand: allocation, what a budget counts, the standing, the re-spread and the warning rules."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lingtan_calc.core.budget import alerts, plans, tracking

TZ = "Asia/Shanghai"


def test_allocation_rules_add_up_to_the_cap() -> None:
    assert plans.allocate(1200, "equal", 2026) == [100.0] * 12
    days = plans.allocate(3650, "days", 2026)
    assert days[0] == pytest.approx(310.0) and days[1] == pytest.approx(280.0) and math.fsum(days) == 3650
    assert plans.allocate(3660, "days", 2028)[1] == pytest.approx(290.0)  # a leap year's February
    prod = plans.allocate(800, "production_plan", 2026, [1] * 6 + [3] * 6)
    assert prod[:6] == pytest.approx([800 / 24] * 6) and prod[6:] == pytest.approx([100.0] * 6)
    assert math.fsum(prod) == 800
    last = plans.allocate(1000, "last_year", 2026, [10, 30, 10, 10, 10, 10, 10, 10, 10, 10, 10, 70])  # Σ 200
    assert last[1] == pytest.approx(150.0) and last[11] == pytest.approx(350.0)
    manual = [100.0004] * 11 + [99.9956]  # a planner's sheet rounded to 0.001 a month: accepted, made exact
    assert math.fsum(plans.allocate(1200, "manual", 2026, manual)) == 1200


@pytest.mark.parametrize(("annual", "rule", "weights", "field", "text"), [
    (-5, "equal", None, "annual", "must be a positive number"),
    (0, "equal", None, "annual", "must be a positive number"),
    (float("nan"), "equal", None, "annual", "must be a positive number"),
    ("100", "equal", None, "annual", "is not a number"),
    (2e9, "equal", None, "annual", "kgce or kgCO2 instead of t"),
    (1200, "weekly", None, "rule", "is not one of"),
    (1200, "manual", [100] * 11 + [50], "monthly", "adds up to 1150, not the annual 1200"),
    (1200, "manual", [100] * 11, "monthly", "twelve numbers"),
    (1200, "production_plan", [1, 1, 1, -1, 1, 1, 1, 1, 1, 1, 1, 1], "weights.3", "is negative"),
    (1200, "production_plan", [0] * 12, "weights", "adds up to zero"),
    (1200, "last_year", None, "last_year", "needs twelve monthly"),
    (10**400, "equal", None, "annual", "must be a positive number"),
    (1200, "equal", [1] * 12, "weights", "takes no weights"),
])
def test_bad_plans_are_refused_naming_the_field(annual, rule, weights, field, text) -> None:
    with pytest.raises(plans.PlanError, match=text) as err:
        plans.allocate(annual, rule, 2026, weights)
    assert err.value.field == field


def test_what_a_budget_counts_follows_the_dual_control_choices() -> None:
    totals = pd.DataFrame({"comprehensive_tce": [100.0], "feedstock_tce": [20.0], "renewable_self_tce": [5.0],
                           "total_tco2": [300.0], "total_market_tco2": [250.0]})
    both = {"renewables": "exclude", "feedstock": "exclude"}
    assert tracking.default_counting("energy") == both
    assert tracking.counted(totals, "energy", both).iloc[0] == 75.0
    assert tracking.counted(totals, "energy", {"renewables": "include", "feedstock": "exclude"}).iloc[0] == 80.0
    assert tracking.counted(totals, "energy", {"renewables": "include", "feedstock": "include"}).iloc[0] == 100.0
    assert tracking.counted(totals, "carbon", {"scope2": "location"}).iloc[0] == 300.0
    assert tracking.counted(totals, "carbon", {"scope2": "market"}).iloc[0] == 250.0
    policy = tracking.dual_control()["energy"]["exclusions"]
    assert policy["feedstock"]["source"]["number"] == "发改环资〔2022〕803号"  # every number carries its source


def _daily(until: str, per_day: float = 10.0, today: float = 5.0) -> pd.Series:
    days = pd.date_range("2025-11-05", until, freq="D", tz=TZ)
    values = np.full(len(days), per_day)
    values[-1] = today  # today so far
    return pd.Series(values, index=days)


def test_standing_of_a_year_and_its_month_by_hand() -> None:
    now = pd.Timestamp("2026-03-10 12:00", tz=TZ)
    monthly = plans.allocate(3650, "equal", 2026)
    year, month = tracking.track(3650, monthly, _daily("2026-03-10"), now, 2026)
    # 1 Jan to 9 Mar: 31 + 28 + 9 = 68 days at 10, today 5 so far; 0.5 of today and 296 days to come
    assert year["actual"] == pytest.approx(685.0) and year["days_left"] == pytest.approx(296.5)
    assert year["projected"] == pytest.approx(685 + 296.5 * 10) and year["lower"] == pytest.approx(year["projected"])
    assert year["remaining"] == pytest.approx(2965.0) and year["remaining_per_day"] == pytest.approx(10.0)
    assert year["used_share"] == pytest.approx(685 / 3650) and year["projected_share"] == pytest.approx(1.0)
    # March: 9 days and half of today counted, half of today and 21 days to come
    assert month["period_start"] == pd.Timestamp("2026-03-01", tz=TZ) and month["plan"] == pytest.approx(3650 / 12)
    assert month["actual"] == pytest.approx(95.0) and month["projected"] == pytest.approx(95 + 21.5 * 10)
    # too little history: the projection is unknown, never a guess
    short = tracking.track(3650, monthly, _daily("2026-03-10").iloc[-5:], now, 2026)[0]
    assert math.isnan(short["projected"]) and short["model"] == "none" and "at least 14" in short["note"]
    # after the year: the outturn is what was counted
    final = tracking.track(3650, monthly, _daily("2027-01-03"), pd.Timestamp("2027-01-03", tz=TZ), 2026)
    assert len(final) == 1 and final[0]["model"] == "final" and final[0]["projected"] == pytest.approx(3650.0)


def test_respread_gives_the_rest_of_the_year_the_remaining_budget() -> None:
    out = tracking.respread(1200, [100.0] * 12, [150, 130] + [0] * 10, month=3)
    assert out[:2] == [150.0, 130.0] and out[2:] == pytest.approx([92.0] * 10) and math.fsum(out) == 1200
    net_supplier = tracking.respread(1200, [100.0] * 12, [-50, 130] + [0] * 10, month=3)
    assert net_supplier[0] == 0.0 and math.fsum(net_supplier) == pytest.approx(1200) and min(net_supplier) >= 0
    with pytest.raises(ValueError, match="only a revision of the cap"):
        tracking.respread(200, [100.0] * 2 + [0.0] * 10, [150, 130] + [0] * 10, month=3)


def _row(**kw) -> dict:
    base = {"period": "year", "period_start": pd.Timestamp("2026-01-01", tz=TZ), "plan": 1000.0, "actual": 850.0,
            "projected": 980.0, "lower": 950.0, "upper": 1010.0, "remaining": 150.0, "days_left": 20.0,
            "remaining_per_day": 7.5, "used_share": 0.85, "projected_share": 0.98, "model": "daily_workday",
            "issued": "2026-12-11T00:15:00+08:00"}
    return {**base, **kw}


@pytest.mark.parametrize(("share", "level", "threshold"), [(0.79, None, None), (0.85, "info", 0.8),
                                                          (0.95, "warning", 0.9), (1.02, "critical", 1.0)])
def test_budget_consumption_warns_at_80_90_100_percent(share, level, threshold) -> None:
    found = alerts.used("e01", "示例企业", "energy", "tce", _row(used_share=share, actual=share * 1000))
    if level is None:
        assert found == []
        return
    (w,) = found
    assert (w["level"], w["threshold"], w["subject"]) == (level, threshold, "energy:year:2026")
    assert "示例企业 2026 年度能耗预算已用" in w["summary_zh"] and "budget" in w["summary_en"]
    assert w["forecast"]["model"] == "daily_workday" and "预计期末 980.0 tce" in w["description_zh"]


def test_projection_above_the_cap_and_a_day_far_above_its_forecast() -> None:
    assert alerts.projected("park", "园区", "carbon", "tCO2", _row()) == []
    (w,) = alerts.projected("park", "园区", "carbon", "tCO2", _row(projected=1040.0, lower=990.0, upper=1090.0))
    assert w["level"] == "warning" and w["value"] == 1040.0 and w["threshold"] == 1000.0
    assert "超出预算 1,000.0 tCO2（+40.0）" in w["summary_zh"]
    (c,) = alerts.projected("park", "园区", "carbon", "tCO2", _row(projected=1100.0, lower=1050.0))
    assert c["level"] == "critical"  # even the interval's lower bound is above the cap
    forecast = {"model": "daily_workday", "issued": "2026-12-03T00:15:00+08:00", "projected": 100.0, "lower": 90.0,
                "upper": 110.0}
    assert alerts.co2_threshold(forecast) == pytest.approx(120.0)  # 20 % above beats the 80 % bound
    assert alerts.co2_day("park", "园区", "2026-12-03", 115.0, forecast) == []
    (d,) = alerts.co2_day("park", "园区", "2026-12-03", 125.0, forecast)
    assert d["rule"] == "co2_above_forecast" and d["forecast"]["issued"] == forecast["issued"]
    assert d["summary_zh"] == "园区 2026-12-03 碳排放 125.0 tCO2，远高于预测 100.0 tCO2（1.25 倍）"


def test_intensity_above_target() -> None:
    target = {"indicator": "energy_per_product", "product": "钢材", "target": 0.5}
    ok = {"value": 0.45, "numerator": 45, "denominator": 100, "months": 3, "unit": "tce/t", "label": "2026"}
    assert alerts.intensity("e01", "甲", target, ok) == []
    (w,) = alerts.intensity("e01", "甲", target, {**ok, "value": 0.55, "numerator": 55})
    assert w["threshold"] == 0.5 and w["subject"] == "energy_per_product:钢材:2026" and "+10.0%" in w["summary_zh"]


def test_one_warning_per_rule_and_subject_in_one_evaluation(tmp_path) -> None:
    from lingtan.db import make_engine, session_factory
    from lingtan_calc.adapters import warning_store

    sessions = session_factory(make_engine(f"sqlite:///{tmp_path}/w.db"))
    texts = {"summary_zh": "z", "summary_en": "e", "description_zh": "", "description_en": ""}
    w = {"rule": "intensity_above_target", "subject": "energy_per_product:钢材:2026", "value": 0.6, "threshold": 0.5,
         "unit": "tce/t", "forecast": None, **texts}
    with sessions() as s:
        counts = warning_store.store_evaluation(s, "e01", {"intensity_above_target"},
                                                [{**w, "level": "warning"}, {**w, "level": "critical"}], True)
        assert counts["opened"] == 1
        (row,) = warning_store.listed(s, "e01", "firing")
        assert row.level == "critical" and s.query(warning_store.WarningDeliveryRow).count() == 1
        assert warning_store.store_evaluation(s, "e01", {"intensity_above_target"}, [], True)["resolved"] == 1
        assert warning_store.listed(s, "e01", "firing") == []
