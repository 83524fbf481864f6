"""Grafana alerting as provisioning files: rules, contact points, notification policies, mute timings.

Thresholds come from ``grafana/alert-thresholds.yaml`` (a park's own numbers, validated here); every rule
queries the fixed InfluxDB datasource in InfluxQL and reduces with Grafana server-side expressions
(``__expr__``). Notifications go to the notifier bridge (``lingtan notify serve``: SMS, e-mail, DingTalk,
WeCom with per-enterprise recipients) through a webhook, and critical ones also by Grafana's own e-mail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lingtan_grafana.influxql import DATASOURCE_UID, DERIVED
from lingtan_grafana.panels import RAW_FROM

THRESHOLDS_FILE = Path(__file__).resolve().parents[2] / "alert-thresholds.yaml"  # grafana/
FOLDER = "Lingtan"


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    silent_minutes: int = Field(5, ge=1, le=1440)  # a meter without a reading this long is silent
    dq_events_per_5min: int = Field(20, ge=1)  # data-quality events per enterprise per 5 minutes
    abnormal_ratio_high: float = Field(1.5, gt=1)  # this hour against the same hour last week
    abnormal_ratio_low: float = Field(0.5, gt=0, lt=1)
    daily_co2_t: dict[str, float] = Field(default_factory=lambda: {"park": 200.0})  # entity -> tCO2 per day
    buffer_bytes: int = Field(1_048_576, ge=1)  # a collector's disk buffer above this and still growing


def load_thresholds(path: Path = THRESHOLDS_FILE) -> Thresholds:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
    try:
        return Thresholds.model_validate(raw or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])} = {e.get('input')!r}: {e['msg']}"
                             for e in exc.errors())
        raise ValueError(f"{path}: {problems}") from None


def _influx(ref: str, query: str, seconds_from: int, seconds_to: int = 0) -> dict[str, Any]:
    return {"refId": ref, "relativeTimeRange": {"from": seconds_from, "to": seconds_to},
            "datasourceUid": DATASOURCE_UID,
            "model": {"refId": ref, "rawQuery": True, "resultFormat": "time_series", "query": " ".join(query.split()),
                      "intervalMs": 60000, "maxDataPoints": 43200}}


def _expr(ref: str, model: dict[str, Any]) -> dict[str, Any]:
    return {"refId": ref, "datasourceUid": "__expr__", "model": {"refId": ref, "datasource": {
        "type": "__expr__", "uid": "__expr__"}, **model}}


def _reduce(ref: str, of: str, reducer: str = "last") -> dict[str, Any]:
    return _expr(ref, {"type": "reduce", "expression": of, "reducer": reducer, "settings": {"mode": "dropNN"}})


def _threshold(ref: str, of: str, op: str, value: float) -> dict[str, Any]:
    return _expr(ref, {"type": "threshold", "expression": of,
                       "conditions": [{"evaluator": {"type": op, "params": [value]}}]})


def _math(ref: str, expression: str) -> dict[str, Any]:
    return _expr(ref, {"type": "math", "expression": expression})


def _rule(uid: str, title: str, condition: str, data: list[dict], *, severity: str, for_: str, summary: str,
          description: str, no_data: str = "OK", labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"uid": uid, "title": title, "condition": condition, "data": data, "for": for_,
            "noDataState": no_data, "execErrState": "Error", "isPaused": False,
            "labels": {"severity": severity, "lingtan": "true", **(labels or {})},
            "annotations": {"summary": summary, "description": description}}


def rules(t: Thresholds) -> list[dict[str, Any]]:
    """The five rules of issue #5 §2 (the budget rules are :func:`budget_rules`)."""
    silent = _influx("A", f'SELECT count("rate") FROM {RAW_FROM} WHERE $timeFilter '
                          'GROUP BY time(1m), "park", "enterprise", "meter" fill(0)', 7200)
    quality = _influx("A", 'SELECT sum("count") FROM "data_quality" WHERE $timeFilter '
                           'GROUP BY time(5m), "park", "enterprise" fill(0)', 3600)
    now_hour = _influx("A", f'SELECT sum("comprehensive_tce") FROM "{DERIVED}"."acc_totals" WHERE "period" = \'hour\' '
                            "AND \"entity\" != 'park' AND $timeFilter GROUP BY \"park\", \"entity\"", 3600)
    week_ago = _influx("B", f'SELECT sum("comprehensive_tce") FROM "{DERIVED}"."acc_totals" WHERE "period" = \'hour\' '
                            "AND \"entity\" != 'park' AND $timeFilter GROUP BY \"park\", \"entity\"",
                       7 * 86400 + 3600, 7 * 86400)
    co2 = [_influx(f"Q{i}", f'SELECT last("total_tco2") FROM "{DERIVED}"."acc_totals" WHERE "period" = \'day\' '
                            f"AND \"entity\" = '{entity}' AND $timeFilter GROUP BY \"park\", \"entity\"", 86400)
           for i, entity in enumerate(sorted(t.daily_co2_t))]
    growth = _influx("A", 'SELECT mean("growth") FROM (SELECT derivative(max("buffer_bytes"), 1m) AS "growth" '
                          'FROM "collector_stats" WHERE $timeFilter GROUP BY time(1m), "park", "collector") '
                          'GROUP BY "park", "collector"', 900)
    size = _influx("B", 'SELECT last("buffer_bytes") FROM "collector_stats" WHERE $timeFilter '
                        'GROUP BY "park", "collector"', 900)
    co2_rules = []
    for i, entity in enumerate(sorted(t.daily_co2_t)):
        co2_rules.append(_rule(
            f"lingtan-daily-co2-{entity}", f"日碳排放超限 Daily CO₂ above {t.daily_co2_t[entity]:g} t ({entity})",
            "C", [co2[i] | {"refId": "A", "model": co2[i]["model"] | {"refId": "A"}}, _reduce("B", "A"),
                  _threshold("C", "B", "gt", t.daily_co2_t[entity])],
            severity="warning", for_="0s",
            summary=f"{{{{ $labels.entity }}}} 今日CO₂ {{{{ $values.B }}}} t，超过 {t.daily_co2_t[entity]:g} t",
            description="Today's scope 1 + 2 CO₂ (calc-service, location-based) is above the configured daily "
                        "threshold (grafana/alert-thresholds.yaml)."))
    return [
        _rule("lingtan-meter-silent", "数据中断 Meter silent", "C",
              [silent, _reduce("B", "A", "last"), _threshold("C", "B", "lt", 1)],
              severity="critical", for_=f"{t.silent_minutes}m",
              summary="计量表 {{ $labels.meter }}（{{ $labels.enterprise }}）已无数据",
              description=f"No reading from this meter for {t.silent_minutes} minutes (it reported within the last "
                          "2 hours). Check the device, its network and the collector."),
        _rule("lingtan-dq-spike", "数据质量异常 Data-quality spike", "C",
              [quality, _reduce("B", "A", "last"), _threshold("C", "B", "gt", t.dq_events_per_5min)],
              severity="warning", for_="5m",
              summary="{{ $labels.enterprise }} 5分钟内数据质量事件 {{ $values.B }} 次",
              description="Many data-quality events (bad status, out of range, counter resets, timeouts). See the "
                          "data-quality dashboard for the reasons and meters."),
        _rule("lingtan-consumption-abnormal", "用能异常 Consumption abnormal against last week", "D",
              [now_hour, week_ago, _reduce("RA", "A"), _reduce("RB", "B"),
               _math("D", f"$RB > 0 && ($RA / $RB > {t.abnormal_ratio_high} || $RA / $RB < {t.abnormal_ratio_low})")],
              severity="warning", for_="0s",
              summary="{{ $labels.entity }} 本小时能耗为上周同时段的 {{ humanize $values.RA }}/{{ humanize $values.RB }}",
              description=f"This hour's comprehensive energy is above {t.abnormal_ratio_high}× or below "
                          f"{t.abnormal_ratio_low}× the same hour last week."),
        *co2_rules,
        _rule("lingtan-buffer-growing", "采集缓存积压 Collector buffer growing", "D",
              [growth, size, _reduce("RA", "A"), _reduce("RB", "B"),
               _math("D", f"$RA > 0 && $RB > {t.buffer_bytes}")],
              severity="critical", for_="10m",
              summary="采集器 {{ $labels.collector }} 缓存 {{ humanizeBytes $values.RB }} 且持续增长",
              description="The collector cannot write to InfluxDB as fast as it reads: its disk buffer keeps "
                          "growing. Nothing is lost, but data on screens is late. Check InfluxDB."),
    ]


#: the label of the rules the calc-service evaluates too (docs/budget.md §4): it sends their messages, with
#: the forecast that triggered them, so Grafana's copies are muted in the policy (shown, not sent twice)
CALC_SOURCE = {"source": "lingtan-calc"}
DAY_S = 86400


def _last_of(measurement: str, field: str, where: str, group: str, window_s: int) -> dict[str, Any]:
    return _influx("A", f'SELECT last("{field}") FROM "{DERIVED}"."{measurement}" WHERE {where} AND $timeFilter '
                        f"GROUP BY {group}", window_s)


def budget_rules() -> list[dict[str, Any]]:
    """Budget, intensity and CO₂ warnings (mirrors of the calc-service's, docs/budget.md §4) and forecast quality."""
    budgets = '"park", "entity", "kind", "period"'
    out = []
    for share, severity in ((0.8, "info"), (0.9, "warning"), (1.0, "critical")):
        # Grafana's threshold is strictly greater; the calc-service's evaluation (≥) sends the messages
        out.append(_rule(
            f"lingtan-budget-used-{round(share * 100)}", f"预算消耗 {share:.0%} Budget {share:.0%} used", "C",
            [_last_of("budget_tracking", "used_share", "\"period\" =~ /^(year|month)$/", budgets, 2 * DAY_S),
             _reduce("B", "A"), _threshold("C", "B", "gt", share)],
            severity=severity, for_="0s", labels=CALC_SOURCE,
            summary=f"{{{{ $labels.entity }}}} {{{{ $labels.period }}}} {{{{ $labels.kind }}}} 预算已用 "
                    f"{{{{ humanizePercentage $values.B }}}}（≥ {share:.0%}）",
            description="Counted to date over the plan (budget_tracking, written daily by the calc-service)."))
    out.append(_rule(
        "lingtan-budget-projected", "预计超预算 Projected above the budget", "C",
        [_last_of("budget_tracking", "projected_share", "\"period\" =~ /^(year|month)$/", budgets, 2 * DAY_S),
         _reduce("B", "A"), _threshold("C", "B", "gt", 1.0)],
        severity="warning", for_="0s", labels=CALC_SOURCE,
        summary="{{ $labels.entity }} {{ $labels.period }} {{ $labels.kind }} 预计为预算的 {{ humanizePercentage $values.B }}",
        description="Actual to date plus the daily-model forecast of the rest is above the plan."))
    out.append(_rule(
        "lingtan-intensity-above-target", "强度超目标 Intensity above its target", "C",
        [_last_of("budget_intensity", "ratio", "\"period\" = 'year'", '"park", "entity", "indicator", "product"',
                  2 * DAY_S), _reduce("B", "A"), _threshold("C", "B", "gt", 1.0)],
        severity="warning", for_="0s", labels=CALC_SOURCE,
        summary="{{ $labels.entity }} {{ $labels.indicator }} {{ $labels.product }} 为目标的 {{ humanize $values.B }} 倍",
        description="The year-to-date intensity (Σ numerator ÷ Σ denominator of its months) over the plan's target."))
    out.append(_rule(
        "lingtan-co2-above-forecast", "日碳排放远超预测 Daily CO₂ far above its forecast", "C",
        [_last_of("forecast_check", "ratio", "\"quantity\" = 'co2_t'", '"park", "entity"', 2 * DAY_S),
         _reduce("B", "A"), _threshold("C", "B", "gt", 1.0)],
        severity="warning", for_="0s", labels=CALC_SOURCE,
        summary="{{ $labels.entity }} 昨日CO₂ 为预警线的 {{ humanize $values.B }} 倍",
        description="Yesterday's CO₂ over the warning line: the day's forecast plus 20 %, and above its 80 % bound."))
    out.append(_rule(
        "lingtan-forecast-skill", "预测质量下降 Forecast quality degraded", "C",
        [_last_of("forecast_skill", "skill", "\"entity\" = 'park' AND \"target\" = 'load' AND \"model\" = "
                  "'harmonic_arima' AND \"kind\" = 'verification' AND \"window\" = '28d'", '"park", "entity"',
                  2 * DAY_S), _reduce("B", "A"), _threshold("C", "B", "lt", 0.0)],
        severity="warning", for_="0s",
        summary="园区负荷预测 28 天技巧分 {{ humanizePercentage $values.B }}，已不如上周同期",
        description="The park's day-ahead load forecast scored worse than previous-week persistence over 28 days "
                    "(forecast_skill): check the meters and the calendar (docs/forecast.md)."))
    return out


def contact_points() -> dict[str, Any]:
    return {"apiVersion": 1, "contactPoints": [
        {"orgId": 1, "name": "lingtan-notifier", "receivers": [{
            "uid": "lingtan-notifier-webhook", "type": "webhook", "disableResolveMessage": False,
            "settings": {"url": "${LINGTAN_NOTIFY_URL}", "httpMethod": "POST", "maxAlerts": "50",
                         "authorization_scheme": "Bearer", "authorization_credentials": "${LINGTAN_NOTIFY_TOKEN}"}}]},
        {"orgId": 1, "name": "lingtan-email", "receivers": [{
            "uid": "lingtan-email-ops", "type": "email", "disableResolveMessage": False,
            "settings": {"addresses": "${LINGTAN_ALERT_EMAILS}", "singleEmail": True,
                         "subject": '[零碳告警] {{ template "default.title" . }}'}}]},
    ]}


def policies() -> dict[str, Any]:
    """Critical alerts by SMS/e-mail (notifier) and Grafana e-mail, often; warnings by the notifier; grouped by
    enterprise so that each enterprise's recipients get their own message."""
    return {"apiVersion": 1, "policies": [{
        "orgId": 1, "receiver": "lingtan-notifier", "group_by": ["alertname", "enterprise"],
        "group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h",
        "routes": [
            # first, and without continue: the calc-service's own warnings stop here, muted (see CALC_SOURCE)
            {"receiver": "lingtan-notifier", "object_matchers": [["source", "=", CALC_SOURCE["source"]]],
             "mute_time_intervals": ["always"]},
            {"receiver": "lingtan-notifier", "object_matchers": [["severity", "=", "critical"]], "continue": True,
             "repeat_interval": "1h"},
            {"receiver": "lingtan-email", "object_matchers": [["severity", "=", "critical"]],
             "mute_time_intervals": ["maintenance-window"]},
            {"receiver": "lingtan-notifier", "object_matchers": [["severity", "=", "warning"]],
             "mute_time_intervals": ["maintenance-window", "night"]},
        ]}]}


def mute_timings() -> dict[str, Any]:
    return {"apiVersion": 1, "muteTimes": [
        # the calc-service's warnings: Grafana shows them, the calc-service sends them (CALC_SOURCE)
        {"orgId": 1, "name": "always", "time_intervals": [{"weekdays": ["monday:sunday"]}]},
        {"orgId": 1, "name": "maintenance-window", "time_intervals": [
            {"times": [{"start_time": "01:00", "end_time": "03:00"}], "weekdays": ["sunday"],
             "location": "Asia/Shanghai"}]},
        {"orgId": 1, "name": "night", "time_intervals": [
            {"times": [{"start_time": "22:00", "end_time": "24:00"}], "location": "Asia/Shanghai"},
            {"times": [{"start_time": "00:00", "end_time": "07:00"}], "location": "Asia/Shanghai"}]},
    ]}


def alerting_files(thresholds: Thresholds | None = None) -> dict[str, str]:
    t = thresholds or load_thresholds()
    group = {"apiVersion": 1, "groups": [{"orgId": 1, "name": "lingtan", "folder": FOLDER, "interval": "1m",
                                          "rules": [*rules(t), *budget_rules()]}]}

    def dump(doc: dict) -> str:
        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120)

    return {"rules.yaml": dump(group), "contact-points.yaml": dump(contact_points()),
            "policies.yaml": dump(policies()), "mute-timings.yaml": dump(mute_timings())}
