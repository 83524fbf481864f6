"""Small helpers shared by the dashboards: variables, filters, panel shortcuts, custom panel types."""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import bargauge, common, dashboard, stat, table, timeseries
from grafana_foundation_sdk.models import common as mc
from grafana_foundation_sdk.models.dashboard import (
    DataTransformerConfig,
    VariableHide,
    VariableRefresh,
    VariableSort,
)

from lingtan.park.carriers import Carrier
from lingtan_grafana.influxql import DATASOURCE, DERIVED, InfluxQL

CARRIERS = "|".join(c.value for c in Carrier)
RAW_FROM = f"/^({CARRIERS})$/"  # every energy measurement
RAW_FILTER = ('"park" =~ /^$park$/ AND "enterprise" =~ /^$enterprise$/ AND "unit" =~ /^$unit$/ '
              'AND "meter" =~ /^$meter$/')
# power sources in the park's balance (electricity roles) and the renewable ones
SOURCE_ROLES = ("grid_import", "pv", "wind", "biomass", "waste_heat", "chp", "storage_discharge",
                "standby_generation")
RENEWABLE_ROLES = ("pv", "wind", "biomass")
TZ = "Asia/Shanghai"


def variable(name: str, label: str, query: str, *, multi: bool = True, include_all: bool = True):
    v = (dashboard.QueryVariable(name).label(label).datasource(DATASOURCE).query(" ".join(query.split()))
         .refresh(VariableRefresh.ON_DASHBOARD_LOAD).sort(VariableSort.ALPHABETICAL_ASC)
         .hide(VariableHide.DONT_HIDE).multi(multi))
    if include_all:
        v = v.include_all(True).all_value(".*")
    return v


def standard_variables() -> list:
    """park, enterprise, unit, meter, carrier: each narrowing the next."""
    return [
        variable("park", "园区 Park", f'SHOW TAG VALUES FROM {RAW_FROM} WITH KEY = "park"', multi=False,
                 include_all=False),
        variable("enterprise", "企业 Enterprise",
                 f'SHOW TAG VALUES FROM {RAW_FROM} WITH KEY = "enterprise" WHERE "park" =~ /^$park$/'),
        variable("unit", "生产单元 Unit",
                 f'SHOW TAG VALUES FROM {RAW_FROM} WITH KEY = "unit" WHERE "park" =~ /^$park$/ '
                 'AND "enterprise" =~ /^$enterprise$/'),
        variable("meter", "计量表 Meter",
                 f'SHOW TAG VALUES FROM {RAW_FROM} WITH KEY = "meter" WHERE "park" =~ /^$park$/ '
                 'AND "enterprise" =~ /^$enterprise$/ AND "unit" =~ /^$unit$/'),
        variable("carrier", "能源品种 Carrier",
                 f'SHOW TAG VALUES FROM {RAW_FROM} WITH KEY = "carrier" WHERE "park" =~ /^$park$/ '
                 'AND "enterprise" =~ /^$enterprise$/'),
    ]


def board(uid: str, title: str, *, tags: list[str], refresh: str = "1m", time_from: str = "now-24h",
          time_to: str = "now"):
    """A provisioned dashboard: read-only, Asia/Shanghai, fixed uid, the standard variables."""
    d = (dashboard.Dashboard(title).uid(uid).tags(["lingtan", *tags]).timezone(TZ).refresh(refresh)
         .time(time_from, time_to).readonly().week_start("monday"))
    for v in standard_variables():
        d = d.with_variable(v)
    return d


def q(query: str, ref: str = "A", alias: str | None = None, *, table_format: bool = False) -> InfluxQL:
    t = InfluxQL(query).ref_id(ref)
    if alias:
        t = t.alias(alias)
    return t.table() if table_format else t


def ts(title: str, unit: str, *targets: InfluxQL, stacked: bool = False, w: int = 12, h: int = 8,
       description: str = ""):
    p = (timeseries.Panel().title(title).description(description).datasource(DATASOURCE).unit(unit).span(w)
         .height(h).fill_opacity(15 if stacked else 5).line_width(1)
         .legend(common.VizLegendOptions().show_legend(True).display_mode(mc.LegendDisplayMode.TABLE)
                 .placement(mc.LegendPlacement.BOTTOM).calcs(["lastNotNull", "mean", "max"])))
    if stacked:
        p = p.stacking(common.StackingConfig().mode(mc.StackingMode.NORMAL))
    for t in targets:
        p = p.with_target(t)
    return p


def big_stat(title: str, unit: str, *targets: InfluxQL, w: int = 6, h: int = 5, decimals: int = 1,
             percent_change: bool = False, description: str = ""):
    p = (stat.Panel().title(title).description(description).datasource(DATASOURCE).unit(unit).decimals(decimals)
         .span(w).height(h).graph_mode(mc.BigValueGraphMode.AREA)
         .color_mode(mc.BigValueColorMode.VALUE)
         .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False)))
    if percent_change:
        p = p.show_percent_change(True)
    for t in targets:
        p = p.with_target(t)
    return p


def bars(title: str, unit: str, *targets: InfluxQL, w: int = 12, h: int = 8, description: str = ""):
    p = (bargauge.Panel().title(title).description(description).datasource(DATASOURCE).unit(unit).span(w)
         .height(h).reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False)))
    for t in targets:
        p = p.with_target(t)
    return p


def tbl(title: str, *targets: InfluxQL, w: int = 12, h: int = 8, unit: str = "", description: str = "",
        transformations: list[DataTransformerConfig] = ()):
    p = table.Panel().title(title).description(description).datasource(DATASOURCE).span(w).height(h)
    if unit:
        p = p.unit(unit)
    for t in targets:
        p = p.with_target(t)
    for tr in transformations:
        p = p.with_transformation(tr)
    return p


def transformation(id_: str, options: dict[str, Any]) -> DataTransformerConfig:
    return DataTransformerConfig(id_val=id_, options=options)


def plugin_panel(type_: str, title: str, *, options: dict[str, Any], targets: list[InfluxQL] = (), w: int = 12,
                 h: int = 8, description: str = ""):
    """A panel of a plugin without a builder (alert list, Sankey): type id and raw options."""
    p = dashboard.Panel().type(type_).title(title).description(description).span(w).height(h).options(options)
    if targets:
        p = p.datasource(DATASOURCE)
    for t in targets:
        p = p.with_target(t)
    return p


def derived(measurement: str) -> str:
    return f'"{DERIVED}"."{measurement}"'
