"""InfluxQL targets for grafana-foundation-sdk, and Grafana's macro expansion for the tests.

grafana-foundation-sdk 0.0.18 has no InfluxDB query builder (docs/dashboards.md); this is the documented
custom-query extension. :func:`interpolate` expands ``$timeFilter``, ``$__interval`` and template
variables the way Grafana's InfluxDB datasource does, so that the tests can run every panel query
against a real InfluxDB.
"""

from __future__ import annotations

import re
from typing import Any, Self

from grafana_foundation_sdk.cog import builder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import DataSourceRef

DATASOURCE_UID = "lingtan-influxdb"  # fixed: dashboards and alert rules reference it (provisioning/datasources)
DATASOURCE = DataSourceRef(type_val="influxdb", uid=DATASOURCE_UID)
RAW = "raw"  # raw readings' retention policy (influx/10-retention.iql); on 2.x the DBRP default
DERIVED = "accounting"  # calc-service results


class InfluxQLQuery(cogvariants.Dataquery):
    """A raw InfluxQL target of the InfluxDB datasource."""

    def __init__(self, query: str = "", ref_id: str | None = None, alias: str | None = None,
                 result_format: str = "time_series"):
        self.query, self.ref_id, self.alias, self.result_format = query, ref_id, alias, result_format

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"datasource": {"type": "influxdb", "uid": DATASOURCE_UID}, "query": self.query,
                               "rawQuery": True, "resultFormat": self.result_format}
        if self.ref_id:
            out["refId"] = self.ref_id
        if self.alias:
            out["alias"] = self.alias
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InfluxQLQuery:
        return cls(data.get("query", ""), data.get("refId"), data.get("alias"), data.get("resultFormat", "time_series"))


class InfluxQL(builder.Builder[InfluxQLQuery]):
    """``InfluxQL('SELECT ...').ref_id('A').alias('$tag_role').table()``."""

    def __init__(self, query: str):
        self._internal = InfluxQLQuery(" ".join(query.split()))

    def build(self) -> InfluxQLQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def alias(self, alias: str) -> Self:
        self._internal.alias = alias
        return self

    def table(self) -> Self:
        self._internal.result_format = "table"
        return self


register_default_plugins()
cogruntime.register_dataquery_variant(cogruntime.DataqueryConfig(identifier="influxdb",
                                                                 from_json_hook=InfluxQLQuery.from_json))

_VAR = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)")


def interpolate(query: str, variables: dict[str, list[str]], *, time_filter: str = "time > now() - 6h",
                interval: str = "1m") -> str:
    """``query`` with Grafana's InfluxQL macros and template variables expanded.

    Multi-value variables inside a regex (``=~ /^$var$/``) become ``(a|b)``, as Grafana does; a
    variable of one value is that value. ``$__interval`` is ``interval``; ``$timeFilter`` is
    ``time_filter``.
    """
    def one(m: re.Match) -> str:
        name = m.group(1) or m.group(3)
        if name == "timeFilter":
            return time_filter
        if name in ("__interval", "interval"):
            return interval
        if name not in variables:
            return m.group(0)
        values = variables[name]
        if values == [".*"]:  # "All" with allValue .*: Grafana inserts it unescaped
            return ".*"
        if len(values) == 1:
            return re.escape(values[0]) if "=~" in query else values[0]
        return "(" + "|".join(re.escape(v) for v in values) + ")"

    return _VAR.sub(one, query)
