"""预算与预测 Budgets and forecasts (docs/budget.md, docs/forecast.md): the budgets' standing written each day
by the calc-service (``budget_tracking``, ``budget_intensity``), each day's CO₂ against its forecast
(``forecast_check``), the park's load forecast beside what was counted, and the forecasts' scores."""

from __future__ import annotations

from lingtan_grafana.panels import bars, board, derived, plugin_panel, q, tbl, transformation, ts

#: the park and the selected enterprises (a budget of the park is the park's, not an enterprise's)
WITH_PARK = '"park" =~ /^$park$/ AND ("entity" =~ /^$enterprise$/ OR "entity" = \'park\')'
STANDING = ('last("plan") AS "plan", last("actual") AS "actual", last("projected") AS "projected", '
            'last("lower") AS "lower", last("upper") AS "upper", last("remaining") AS "remaining", '
            'last("remaining_per_day") AS "remaining_per_day", last("used_share") AS "used"')


def _standing(period: str):
    return q(f'SELECT {STANDING} FROM {derived("budget_tracking")} WHERE {WITH_PARK} AND "period" = \'{period}\' '
             'AND $timeFilter GROUP BY "entity", "kind"', table_format=True)


def budget():
    """预算与预测: annual and monthly budgets with their projections, intensity targets, CO₂ against its
    forecast, the park's load forecast and the forecast quality."""
    load = q(f'SELECT mean("mean_kw") AS "forecast", mean("lower_kw") AS "lower 80 %", mean("upper_kw") AS '
             f'"upper 80 %" FROM {derived("forecast_load")} WHERE "park" =~ /^$park$/ AND "entity" = \'park\' '
             "AND \"model\" = 'harmonic_arima' AND \"issued\" = 'latest' AND $timeFilter GROUP BY time(1h) fill(none)")
    counted = q(f'SELECT sum("quantity") AS "counted" FROM {derived("acc_carrier")} WHERE "park" =~ /^$park$/ '
                "AND \"entity\" = 'park' AND \"carrier\" = 'electricity' AND \"period\" = 'hour' AND $timeFilter "
                "GROUP BY time(1h) fill(none)", ref="B")
    sort = [transformation("sortBy", {"sort": [{"field": "used", "desc": True}]})]
    return (board("lingtan-budget", "预算与预测 Budgets and forecasts", tags=["budget", "forecast"], refresh="5m",
                  time_from="now-30d", time_to="now+2d")
            .with_panel(tbl("年度预算执行 Annual budgets (tce / tCO₂)", _standing("year"), w=16, h=8,
                            transformations=sort,
                            description="Plan, counted to date (dual-control counting of the plan), the projected "
                                        "outturn with its 80 % interval, and what remains per day. Written each "
                                        "day by the calc-service (docs/budget.md)."))
            .with_panel(bars("年度预算使用率 Annual budget used", "percentunit",
                             q(f'SELECT last("used_share") FROM {derived("budget_tracking")} WHERE {WITH_PARK} '
                               "AND \"period\" = 'year' AND $timeFilter GROUP BY \"entity\", \"kind\"",
                               alias="$tag_entity $tag_kind"), w=8, h=8))
            .with_panel(tbl("本月预算 This month's budgets", _standing("month"), w=16, h=8, transformations=sort))
            .with_panel(plugin_panel("alertlist", "预算与碳排放预警 Budget and carbon warnings", w=8, h=8, options={
                "viewMode": "list", "groupMode": "default", "maxItems": 20, "sortOrder": 1, "dashboardAlerts": False,
                "alertName": "", "stateFilter": {"firing": True, "pending": True, "noData": False, "error": True,
                                                 "normal": False}, "folder": {"title": "Lingtan", "uid": "lingtan"}},
                description="The portal lists the calc-service's warnings with their messages (/budgets)."))
            .with_panel(ts("年度预计与计划 Projected outturn against the plan", "none",
                           q(f'SELECT last("projected") AS "projected", last("plan") AS "plan" FROM '
                             f'{derived("budget_tracking")} WHERE {WITH_PARK} AND "period" = \'year\' AND $timeFilter '
                             'GROUP BY time(1d, 16h), "entity", "kind" fill(none)',
                             alias="$tag_entity $tag_kind $col"), w=12, h=8))
            .with_panel(ts("日碳排放与预测 Daily CO₂ against its forecast (t)", "none",
                           q(f'SELECT last("actual") AS "actual", last("forecast") AS "forecast", last("threshold") AS '
                             f'"warning line" FROM {derived("forecast_check")} WHERE {WITH_PARK} AND $timeFilter '
                             'GROUP BY time(1d, 16h), "entity" fill(none)', alias="$tag_entity $col"), w=12, h=8))
            .with_panel(ts("园区负荷预测 Park electric load: forecast and counted (kW)", "kwatt", load, counted,
                           w=16, h=8, description="The newest day-ahead forecast of each hour (harmonic regression "
                                                  "with ARIMA errors, docs/forecast.md) and the hour's counted "
                                                  "electricity (kWh per hour = kW)."))
            .with_panel(tbl("强度目标 Intensities against their targets",
                            q(f'SELECT last("value") AS "year to date", last("target") AS "target", last("ratio") AS '
                              f'"ratio" FROM {derived("budget_intensity")} WHERE {WITH_PARK} AND $timeFilter '
                              'GROUP BY "entity", "indicator", "product"', table_format=True), w=8, h=8))
            .with_panel(tbl("预测质量 Forecast quality (verification and backtests)",
                            q(f'SELECT last("nrmse") AS "nrmse", last("skill") AS "skill", last("nmbe") AS "nmbe", '
                              f'last("n") AS "hours" FROM {derived("forecast_skill")} WHERE {WITH_PARK} '
                              'AND $timeFilter GROUP BY "entity", "target", "model", "kind", "window"',
                              table_format=True), w=24, h=8,
                            description="NRMSE and NMBE over the mean; skill against previous-week persistence "
                                        "(docs/forecast.md). An alert fires when the park's 28-day day-ahead load "
                                        "skill drops below zero.")))
