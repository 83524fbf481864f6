"""The eight dashboards (issue #5 §1, the analysis board of docs/analysis.md, the budget board of docs/budget.md). Every panel query is InfluxQL on the fixed datasource uid, filtered by the
template variables; ``tests/test_dashboards.py`` runs each against InfluxDB filled by the running demo park."""

from __future__ import annotations

from lingtan_grafana.boards_budget import budget
from lingtan_grafana.panels import (
    RAW_FILTER,
    RENEWABLE_ROLES,
    SOURCE_ROLES,
    bars,
    big_stat,
    board,
    derived,
    plugin_panel,
    q,
    tbl,
    transformation,
    ts,
)

SOURCES = "|".join(SOURCE_ROLES)
RENEWABLES = "|".join(RENEWABLE_ROLES)
PARK = '"park" =~ /^$park$/'
# derived series of the selected enterprises (entity = enterprise id)
ENTITIES = '"park" =~ /^$park$/ AND "entity" =~ /^$enterprise$/ AND "entity" != \'park\''
PARK_ENTITY = '"park" =~ /^$park$/ AND "entity" = \'park\''


def park_overview():
    """园区总览: the control-room wallboard (kiosk at 1920×1080: 24 columns × 5 rows of panels)."""
    power_now = q(f'SELECT sum("kw") FROM (SELECT last("rate") AS "kw" FROM "electricity" WHERE {PARK} '
                  f'AND "role" =~ /^({SOURCES})$/ AND $timeFilter GROUP BY "meter", "role") GROUP BY "role"',
                  alias="$tag_role", table_format=False)
    # per-meter energy as the calc-service accounted it (counter rules, quarantines, corrections):
    # the same figure as the portal and the reports, never a second reading of the raw counters
    today = f'{derived("acc_point")} WHERE {PARK} AND "period" = \'day\' AND $timeFilter'
    share = [q(f'SELECT sum("quantity") FROM {today} AND "carrier" = \'electricity\' '
               f'AND "role" =~ /^({RENEWABLES})$/', "A", "renewable"),
             q(f'SELECT sum("quantity") FROM {today} AND "carrier" = \'electricity\' '
               f'AND "role" =~ /^({SOURCES})$/', "B", "supplied")]
    share_panel = (big_stat("今日可再生能源占比 Renewables share today", "percentunit", *share, w=4, decimals=1,
                            description="Renewable generation (PV, wind, biomass) over all electricity supplied "
                                        "to the park today (grid import and on-site generation).")
                   .time_from("now/d")
                   .with_transformation(transformation("calculateField", {
                       "mode": "binary", "binary": {"left": "renewable", "operator": "/", "right": "supplied"},
                       "alias": "share", "replaceFields": True})))
    days = "AND \"period\" = 'day' AND time > now() - 2d"
    tce = q(f'SELECT last("comprehensive_tce") FROM {derived("acc_totals")} WHERE {PARK_ENTITY} {days} '
            'GROUP BY time(1d, 16h) fill(none)', alias="tce")
    co2 = q(f'SELECT last("total_tco2") FROM {derived("acc_totals")} WHERE {PARK_ENTITY} {days} '
            'GROUP BY time(1d, 16h) fill(none)', alias="tCO2")
    top = q(f'SELECT last("comprehensive_tce") AS "tce" FROM {derived("acc_totals")} WHERE "park" =~ /^$park$/ '
            "AND \"entity\" != 'park' AND \"period\" = 'day' AND time > now() - 1d GROUP BY \"entity\"",
            alias="$tag_entity")
    return (board("lingtan-park-overview", "园区总览 Park overview", tags=["wallboard"], refresh="30s",
                  time_from="now-6h")
            .with_panel(bars("当前功率（按来源） Power now by source", "kwatt", power_now, w=14, h=9,
                             description="Newest reading of every supplying meter in the last 5 minutes, summed "
                                         "by role: grid, PV, wind, biomass, waste heat, CHP, storage.")
                        .time_from("5m"))
            .with_panel(share_panel)
            .with_panel(big_stat("今日综合能耗 Energy today (tce)", "none", tce, w=3, decimals=3, percent_change=True,
                                 description="GB/T 2589 comprehensive energy consumption, today against yesterday."))
            .with_panel(big_stat("今日CO₂ CO₂ today (t)", "none", co2, w=3, decimals=2, percent_change=True,
                                 description="Scope 1 + 2 (location-based), today against yesterday."))
            .with_panel(bars("今日用能企业排名 Top-consuming enterprises today (tce)", "none", top, w=14, h=9))
            .with_panel(plugin_panel("alertlist", "活动告警 Active alerts", w=10, h=9, options={
                "viewMode": "list", "groupMode": "default", "maxItems": 20, "sortOrder": 1, "dashboardAlerts": False,
                "alertName": "", "stateFilter": {"firing": True, "pending": True, "noData": True, "error": True,
                                                 "normal": False}, "folder": {"title": "Lingtan", "uid": "lingtan"}}))
            .with_panel(ts("园区用电功率 Park power, last 6 h", "kwatt",
                           q(f'SELECT mean("rate") FROM "electricity" WHERE {PARK} AND "role" =~ /^({SOURCES})$/ '
                             'AND $timeFilter GROUP BY time($__interval), "role" fill(null)', alias="$tag_role"),
                           stacked=True, w=24, h=9)))


CARRIER_PANELS = (
    ("natural_gas", "天然气 Natural gas", "m³/h"), ("steam", "蒸汽 Steam", "t/h"), ("heat", "热 Heat", "kW"),
    ("water", "水 Water", "m³/h"), ("cooling", "冷 Cooling", "kW"), ("diesel", "柴油 Diesel", "L/h"),
    ("biomass", "生物质 Biomass", "t/h"),
)


def realtime():
    """实时监测: every carrier's rates over any range, electricity by generation type."""
    d = (board("lingtan-realtime", "实时监测 Real-time monitoring", tags=["realtime"], refresh="30s",
               time_from="now-3h")
         .with_panel(ts("电力：按发电类型 Electricity by generation type", "kwatt",
                        q(f'SELECT mean("rate") FROM "electricity" WHERE {RAW_FILTER} AND "role" =~ /^({SOURCES})$/ '
                          'AND $timeFilter GROUP BY time($__interval), "role" fill(null)', alias="$tag_role"),
                        stacked=True, w=12, h=9))
         .with_panel(ts("电力：按计量表 Electricity by meter", "kwatt",
                        q(f"SELECT mean(\"rate\") FROM \"electricity\" WHERE {RAW_FILTER} AND \"role\" = 'consumption' "
                          'AND $timeFilter GROUP BY time($__interval), "meter" fill(null)', alias="$tag_meter"),
                        w=12, h=9)))
    for carrier, title, unit in CARRIER_PANELS:
        d = d.with_panel(ts(title, "none", q(
            f'SELECT mean("rate") FROM "{carrier}" WHERE {RAW_FILTER} AND $timeFilter '
            'GROUP BY time($__interval), "meter" fill(null)', alias="$tag_meter"), w=12, h=7,
            description=f"Rate in {unit} (canonical unit of the carrier), per meter."))
    return d


def energy():
    """能耗与强度: by enterprise, carrier and period, with 同比 (year on year) and 环比 (period on period)."""
    monthly = q(f'SELECT last("comprehensive_tce") FROM {derived("acc_totals")} WHERE {ENTITIES} '
                "AND \"period\" = 'month' AND time > now() - 800d GROUP BY time(1d, 16h), \"entity\" fill(none)",
                alias="$tag_entity")
    compare = {"getOption": _COMPARE_JS, "renderer": "canvas", "editorMode": "code", "map": "none"}
    return (board("lingtan-energy", "能耗与强度 Energy consumption and intensity", tags=["energy"], refresh="5m",
                  time_from="now-30d")
            .with_panel(ts("日综合能耗（按企业） Daily energy by enterprise (tce)", "none",
                           q(f'SELECT last("comprehensive_tce") FROM {derived("acc_totals")} WHERE {ENTITIES} '
                             "AND \"period\" = 'day' AND $timeFilter GROUP BY time(1d, 16h), \"entity\" fill(none)",
                             alias="$tag_entity"), stacked=True, w=12, h=9))
            .with_panel(ts("日能耗（按能源品种） Daily energy by carrier (tce)", "none",
                           q(f'SELECT sum("tce") FROM {derived("acc_carrier")} WHERE {ENTITIES} '
                             "AND \"carrier\" =~ /^$carrier$/ AND \"period\" = 'day' AND $timeFilter "
                             'GROUP BY time(1d, 16h), "carrier" fill(none)', alias="$tag_carrier"), stacked=True,
                           w=12, h=9))
            .with_panel(ts("小时能耗 Hourly energy (tce)", "none",
                           q(f'SELECT sum("comprehensive_tce") FROM {derived("acc_totals")} WHERE {ENTITIES} '
                             "AND \"period\" = 'hour' AND $timeFilter GROUP BY time(1h), \"entity\" fill(none)",
                             alias="$tag_entity"), w=12, h=8))
            .with_panel(tbl("能耗强度 Intensity indicators",
                            q(f'SELECT last("value") AS "value" FROM {derived("acc_intensity")} WHERE {ENTITIES} '
                              'AND $timeFilter GROUP BY "entity", "indicator", "product", "unit", "period"',
                              table_format=True), w=12, h=8,
                            description="Per unit of output or value added, from production data (calc-service)."))
            .with_panel(plugin_panel("volkovlabs-echarts-panel", "同比 / 环比 Year on year and month on month",
                                     targets=[monthly], w=24, h=9, options=compare,
                                     description="Monthly comprehensive energy per enterprise; 环比 against the "
                                                 "previous month, 同比 against the same month a year earlier (shown "
                                                 "when that month has data).")))


_COMPARE_JS = """
const rows = [];
context.panel.data.series.forEach((s) => {
  const t = s.fields.find((f) => f.type === 'time');
  const v = s.fields.find((f) => f.type === 'number');
  if (!t || !v) { return; }
  const name = v.config.displayNameFromDS || s.name;
  const byMonth = {};
  t.values.forEach((ms, i) => { const d = new Date(ms + 8 * 3600e3);
    byMonth[d.getUTCFullYear() * 12 + d.getUTCMonth()] = v.values[i]; });
  Object.keys(byMonth).map(Number).sort().forEach((m) => {
    const cur = byMonth[m], prev = byMonth[m - 1], lastYear = byMonth[m - 12];
    rows.push({ name, month: `${Math.floor(m / 12)}-${String(m % 12 + 1).padStart(2, '0')}`,
      mom: prev ? (cur / prev - 1) * 100 : null, yoy: lastYear ? (cur / lastYear - 1) * 100 : null });
  });
});
const months = [...new Set(rows.map((r) => r.month))];
const names = [...new Set(rows.map((r) => r.name))];
const pick = (n, k) => months.map((m) => { const r = rows.find((x) => x.name === n && x.month === m);
  return r && r[k] !== null ? +r[k].toFixed(1) : null; });
return { tooltip: { trigger: 'axis' }, legend: { top: 0 }, xAxis: { type: 'category', data: months },
  yAxis: { type: 'value', name: '%' },
  series: names.flatMap((n) => [{ name: `${n} 环比`, type: 'bar', data: pick(n, 'mom') },
                                { name: `${n} 同比`, type: 'line', data: pick(n, 'yoy') }]) };
""".strip()


def carbon():
    """碳排放: by source category, scope and enterprise; intensity; location-based against market-based."""
    return (board("lingtan-carbon", "碳排放 Carbon", tags=["carbon"], refresh="5m", time_from="now-30d")
            .with_panel(ts("按排放源类别 By source category (tCO₂/day)", "none",
                           q(f'SELECT sum("tco2") FROM {derived("acc_emission")} WHERE {ENTITIES} '
                             "AND \"period\" = 'day' AND $timeFilter GROUP BY time(1d, 16h), \"category\" fill(none)",
                             alias="$tag_category"), stacked=True, w=12, h=9))
            .with_panel(ts("按范围 By scope (tCO₂/day)", "none",
                           q(f'SELECT sum("tco2") FROM {derived("acc_emission")} WHERE {ENTITIES} '
                             "AND \"period\" = 'day' AND $timeFilter GROUP BY time(1d, 16h), \"scope\" fill(none)",
                             alias="scope $tag_scope"), stacked=True, w=12, h=9))
            .with_panel(bars("按企业 By enterprise (tCO₂ in range)", "none",
                             q(f'SELECT sum("total_tco2") FROM {derived("acc_totals")} WHERE {ENTITIES} '
                               "AND \"period\" = 'day' AND $timeFilter GROUP BY \"entity\"", alias="$tag_entity"),
                             w=8, h=9))
            .with_panel(ts("基于位置 vs 基于市场 Location- vs market-based (tCO₂/day)", "none",
                           q(f'SELECT sum("total_tco2") AS "location-based", sum("total_market_tco2") AS '
                             f'"market-based" FROM {derived("acc_totals")} WHERE {ENTITIES} '
                             "AND \"period\" = 'day' AND $timeFilter GROUP BY time(1d, 16h) fill(none)"),
                           w=8, h=9))
            .with_panel(tbl("碳排放强度 Carbon intensity",
                            q(f'SELECT last("value") AS "value" FROM {derived("acc_intensity")} WHERE {ENTITIES} '
                              "AND \"indicator\" =~ /^carbon_/ AND $timeFilter GROUP BY \"entity\", \"indicator\", "
                              '"product", "unit", "period"', table_format=True), w=8, h=9)))


def energy_flow():
    """能流图: a Sankey diagram of the park's energy flow (calc-service ``acc_flow``), in tce."""
    flows = q(f'SELECT sum("tce") AS "tce" FROM {derived("acc_flow")} WHERE {PARK} AND "period" = \'hour\' '
              'AND $timeFilter GROUP BY "source", "target"', table_format=True)
    return (board("lingtan-energy-flow", "能流图 Energy flow", tags=["energy", "flow"], refresh="5m",
                  time_from="now/d")
            .with_panel(plugin_panel("netsage-sankey-panel", "园区能流 Park energy flow (tce)", targets=[flows],
                                     w=24, h=16, options={"valueField": "tce", "monochrome": False, "color": "#1a7f5a",
                                                          "nodeWidth": 24, "nodePadding": 18, "iteration": 7}))
            .with_panel(tbl("转换环节损耗 Conversion losses (tce)",
                            q(f'SELECT sum("input_tce") AS "input", sum("output_tce") AS "output", sum("loss_tce") '
                              f'AS "loss" FROM {derived("acc_node")} WHERE {PARK} AND "period" = \'hour\' '
                              'AND $timeFilter GROUP BY "node", "kind"', table_format=True), w=24, h=8)))


def data_quality():
    """数据质量与采集健康: points per protocol, lag, error reasons and buffer depth."""
    stats = f'"collector_stats" WHERE {PARK} AND $timeFilter'
    return (board("lingtan-data-quality", "数据质量与采集健康 Data quality and collector health", tags=["health"],
                  refresh="30s", time_from="now-3h")
            .with_panel(ts("写入点数/秒（按协议） Points written per second by protocol", "wps",
                           q(f'SELECT non_negative_derivative(max("points_written"), 1s) FROM {stats} '
                             'GROUP BY time($__interval), "protocol" fill(null)', alias="$tag_protocol"), w=12, h=8))
            .with_panel(ts("写入延迟 p95 Write lag p95", "ms",
                           q(f'SELECT max("lag_ms") FROM {stats} GROUP BY time($__interval), "protocol" fill(null)',
                             alias="$tag_protocol"), w=12, h=8))
            .with_panel(ts("缓存积压 Buffer depth", "bytes",
                           q(f'SELECT max("buffer_bytes") AS "disk buffer", max("queue_depth") AS "memory queue" '
                             f'FROM {stats} GROUP BY time($__interval), "protocol" fill(null)'), w=12, h=8))
            .with_panel(ts("数据质量事件（按原因） Data-quality events by reason", "short",
                           q(f'SELECT sum("count") FROM "data_quality" WHERE {PARK} AND $timeFilter '
                             'GROUP BY time($__interval), "reason" fill(0)', alias="$tag_reason"),
                           stacked=True, w=12, h=8))
            .with_panel(tbl("问题最多的计量表 Meters with most events",
                            q(f'SELECT sum("count") AS "events" FROM "data_quality" WHERE {PARK} AND $timeFilter '
                              'GROUP BY "meter", "reason", "protocol"', table_format=True), w=12, h=8,
                            transformations=[transformation("sortBy", {"sort": [{"field": "events",
                                                                                 "desc": True}]})]))
            .with_panel(tbl("隔离的计量区间 Quarantined intervals",
                            q('SELECT "value" AS "measured", "limit", "status", "detail", "meter", "point" '
                              f'FROM "data_quality" WHERE {PARK} AND "reason" = \'implausible_consumption\' '
                              'AND $timeFilter', table_format=True), w=24, h=8,
                            description="Intervals whose consumption exceeds what the meter's capacity allows: "
                                        "excluded from every total until confirmed or corrected "
                                        "(calc API /api/v1/quarantine; docs/accounting.md).",
                            transformations=[transformation("sortBy", {"sort": [{"field": "Time", "desc": True}]})]))
            .with_panel(ts("接收读数/秒 Readings received per second", "short",
                           q(f'SELECT non_negative_derivative(max("points_in"), 1s) FROM {stats} '
                             'GROUP BY time($__interval), "protocol" fill(null)', alias="$tag_protocol"), w=12, h=8)))


ANALYSIS_LINKS = """
The analyses that need the park model and the tariffs are in the portal (docs/analysis.md):

* [能源成本 Cost by time-of-use band](/analysis/cost) · [重点能耗环节 Key consumers](/analysis/pareto)
* [能源平衡表 Energy balance](/analysis/balance) · [能效 Efficiency and base load](/analysis/efficiency)
* [节能建议 Recommendations](/analysis/recommendations) · [报表 Reports](/analysis/reports)
""".strip()


def analysis():
    """能耗分析: structure, conversion efficiency and the monthly trend, with links to the portal's analyses."""
    days = "AND \"period\" = 'day' AND $timeFilter"
    share = q(f'SELECT sum("tce") FROM {derived("acc_carrier")} WHERE {PARK_ENTITY} {days} GROUP BY "carrier"',
              alias="$tag_carrier")
    efficiency = q(f'SELECT sum("output_tce") / sum("input_tce") FROM {derived("acc_node")} WHERE {PARK} {days} '
                   'GROUP BY "node"', alias="$tag_node")
    months = q(f'SELECT last("comprehensive_tce") FROM {derived("acc_totals")} WHERE {PARK_ENTITY} '
               "AND \"period\" = 'month' AND time > now() - 400d GROUP BY time(1d, 16h) fill(none)", alias="tce")
    by_enterprise = q(f'SELECT sum("comprehensive_tce") FROM {derived("acc_totals")} WHERE {ENTITIES} {days} '
                      'GROUP BY "entity"', alias="$tag_entity")
    return (board("lingtan-analysis", "能耗分析 Energy analysis", tags=["energy", "analysis"], refresh="5m",
                  time_from="now-30d")
            .with_panel(plugin_panel("piechart", "用能结构 Energy by carrier (tce)", targets=[share], w=8, h=9,
                                     options={"pieType": "donut", "reduceOptions": {"calcs": ["lastNotNull"],
                                                                                    "values": False},
                                              "legend": {"displayMode": "table", "placement": "right",
                                                         "values": ["value", "percent"]}},
                                     description="The park's comprehensive energy by carrier over the range "
                                                 "(GB/T 2589, 当量值)."))
            .with_panel(bars("按企业 Energy by enterprise (tce in range)", "none", by_enterprise, w=8, h=9))
            .with_panel(bars("转换效率 Conversion efficiency (output/input)", "percentunit", efficiency, w=8, h=9,
                             description="Output over input of each conversion node in tce at 当量值 (a ratio of "
                                         "energy; a chiller's cooling has no coefficient, see the portal for its COP). "
                                         "docs/analysis.md §6."))
            .with_panel(ts("月度趋势 Monthly energy (tce)", "none", months, w=16, h=8))
            .with_panel(plugin_panel("text", "更多分析 More analyses", w=8, h=8,
                                     options={"mode": "markdown", "content": ANALYSIS_LINKS})))


DASHBOARDS = {
    "park-overview": park_overview, "realtime": realtime, "energy": energy, "carbon": carbon,
    "energy-flow": energy_flow, "data-quality": data_quality, "analysis": analysis, "budget": budget,
}
