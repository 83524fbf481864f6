"""A report as an Excel workbook (openpyxl), one sheet per section, with native bar charts.

Lays out :func:`lingtan_calc.service.report_content.report_content` without computing anything
(docs/analysis.md §8): numbers are written as numbers with a number format, never as text.
"""

from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from lingtan_calc.adapters.report_text import carrier, maybe, t, unit_of

HEAD = Font(bold=True, color="FFFFFF")
HEAD_FILL = PatternFill("solid", fgColor="1B6E3A")
TITLE = Font(bold=True, size=14)
NUMBER = "#,##0.000"
MONEY = "#,##0.00"
PERCENT = "0.0%"


def _table(ws, row: int, headers: list[str], rows: list[list[Any]], formats: list[str | None]) -> int:
    """Write a table at ``row``; returns the next free row."""
    for c, h in enumerate(headers, start=1):
        cell = ws.cell(row=row, column=c, value=h)
        cell.font, cell.fill, cell.alignment = HEAD, HEAD_FILL, Alignment(wrap_text=True)
    for r, values in enumerate(rows, start=row + 1):
        for c, (v, fmt) in enumerate(zip(values, formats, strict=True), start=1):
            cell = ws.cell(row=r, column=c, value=v)
            if fmt and isinstance(v, int | float):
                cell.number_format = fmt
    for c in range(1, len(headers) + 1):
        width = max([len(str(headers[c - 1]))] + [len(str(v[c - 1])) for v in rows if v[c - 1] is not None]) + 2
        ws.column_dimensions[get_column_letter(c)].width = min(max(ws.column_dimensions[get_column_letter(c)].width or 0,
                                                                   width), 60)
    return row + len(rows) + 2


def _bar_chart(ws, title: str, first_row: int, n: int, value_col: int, label_col: int, anchor: str) -> None:
    if n == 0:
        return
    chart = BarChart()
    chart.title, chart.style, chart.legend = title, 10, None
    chart.add_data(Reference(ws, min_col=value_col, min_row=first_row, max_row=first_row + n), titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=label_col, min_row=first_row + 1, max_row=first_row + n))
    chart.height, chart.width = 7.5, 16
    ws.add_chart(chart, anchor)


def _summary(wb: Workbook, c: dict[str, Any], lang: str) -> None:
    ws = wb.active
    ws.title = t("summary", lang)
    m = c["meta"]
    ws["A1"] = f"{m['park']} · {t(m['kind'], lang)}"
    ws["A1"].font = TITLE
    meta = [[t("entity", lang), m["entity_name"]], [t("period", lang), m["period"]],
            [t("generated", lang), m["generated_at"]], [t("basis", lang), t("basis_" + m["basis"], lang)]]
    row = _table(ws, 3, [t("item", lang), t("value", lang)], meta, [None, None])
    keys = ["comprehensive_tce", "feedstock_tce", "non_production_tce", "renewable_self_tce", "scope1_tco2",
            "scope2_tco2", "scope2_market_tco2", "total_tco2", "total_market_tco2"]
    totals = [[t(k, lang), c["totals"][k], "tce" if k.endswith("tce") else "tCO₂"] for k in keys]
    if c["cost"]:
        totals.append([t("total_cost", lang), c["cost"]["total_cost"], "CNY"])
    row = _table(ws, row, [t("item", lang), t("value", lang), t("unit", lang)], totals, [None, NUMBER, None])
    comp = []
    for base in ("previous", "last_year"):
        body = c["comparison"].get(base)
        if body:
            tot = body["total"]
            comp.append([t(base, lang), tot["base"], tot["current"], tot["change"], tot["change_ratio"]])
    if comp:
        _table(ws, row, [t("comparison", lang) + " (tce)", t("base", lang), t("current", lang), t("change", lang),
                         t("change_ratio", lang)], comp, [None, NUMBER, NUMBER, NUMBER, PERCENT])


def _energy(wb: Workbook, c: dict[str, Any], lang: str) -> None:
    ws = wb.create_sheet(t("energy", lang))
    rows = [[carrier(r["carrier"], lang), r.get("quantity"), unit_of(r["carrier"]), r["tce"], r["share"]] for r in c["energy"]]
    row = _table(ws, 1, [t("carrier", lang), t("quantity", lang), t("unit", lang), "tce", t("share", lang)], rows,
                 [None, NUMBER, None, NUMBER, PERCENT])
    _bar_chart(ws, t("energy", lang) + " (tce)", 1, len(rows), 4, 1, "G2")
    if c["intensities"]:
        ws.cell(row=row, column=1, value=t("intensities", lang)).font = Font(bold=True)
        _table(ws, row + 1, [t("indicator", lang), t("product", lang), t("value", lang), t("unit", lang)],
               [[r["indicator"], r["product"], r["value"], r["unit"]] for r in c["intensities"]], [None, None, NUMBER, None])


def _carbon(wb: Workbook, c: dict[str, Any], lang: str) -> None:
    ws = wb.create_sheet(t("carbon", lang))
    rows = [[maybe("category_" + r["category"], lang, r["category"]), r["scope"], carrier(r["carrier"], lang), r["tco2"],
             r["tco2_market"]] for r in c["carbon"]]
    _table(ws, 1, [t("category", lang), t("scope", lang), t("carrier", lang), t("tco2", lang), t("tco2_market", lang)],
           rows, [None, None, None, NUMBER, NUMBER])


def _cost(wb: Workbook, c: dict[str, Any], lang: str) -> None:
    ws = wb.create_sheet(t("cost", lang))
    if not c["cost"]:
        ws["A1"] = t("missing", lang) + (c["cost_missing"] or "")
        return
    body = c["cost"]
    rows = [[carrier(r["carrier"], lang), r["quantity"], r["energy_cost"], r["demand_cost"], r["cost"], r["average_price"]]
            for r in body["summary"]]
    row = _table(ws, 1, [t("carrier", lang), t("quantity", lang), t("energy_cost", lang), t("demand_cost", lang),
                         t("cny", lang), t("average_price", lang)], rows, [None, NUMBER, MONEY, MONEY, MONEY, "0.0000"])
    bands = [[carrier(r["carrier"], lang), maybe("band_" + r["band"], lang, "—") if r["band"] else "—", r["quantity"],
              r["price"], r["cost"]] for r in body["bands"]]
    first = row
    row = _table(ws, row, [t("carrier", lang), t("band", lang), t("quantity", lang), t("price", lang), t("cny", lang)],
                 bands, [None, None, NUMBER, "0.0000", MONEY])
    _bar_chart(ws, t("cost", lang) + " (CNY)", first, len(bands), 5, 2, "H2")
    if body["demand"]:
        _table(ws, row, [t("month_label", lang), t("demand_kw", lang), t("cny", lang)],
               [[r["month"], r["demand_kw"], r["cost"]] for r in body["demand"]], [None, NUMBER, MONEY])


def _comparison_and_top(wb: Workbook, c: dict[str, Any], lang: str) -> None:
    ws = wb.create_sheet(t("comparison", lang))
    row = 1
    for base in ("previous", "last_year"):
        body = c["comparison"].get(base)
        ws.cell(row=row, column=1, value=t(base, lang)).font = Font(bold=True)
        if not body:
            ws.cell(row=row + 1, column=1, value=t("none", lang))
            row += 3
            continue
        rows = [[carrier(r["carrier"], lang), r["base"], r["current"], r["change"], r["change_ratio"]] for r in body["rows"]]
        row = _table(ws, row + 1, [t("carrier", lang), t("base", lang) + " tce", t("current", lang) + " tce",
                                   t("change", lang), t("change_ratio", lang)], rows, [None, NUMBER, NUMBER, NUMBER, PERCENT])
    ws = wb.create_sheet(t("top", lang))
    rows = [[f"{r['enterprise']}/{r['unit_id']}", r["value"], r["share"], r["cumulative_share"], "★" if r["key"] else ""]
            for r in c["top_consumers"]]
    _table(ws, 1, [t("consumer", lang), "tce", t("share", lang), t("cumulative_share", lang), t("key", lang)], rows,
           [None, NUMBER, PERCENT, PERCENT, None])
    _bar_chart(ws, t("top", lang) + " (tce)", 1, len(rows), 2, 1, "G2")


def _balance(wb: Workbook, c: dict[str, Any], lang: str) -> None:
    ws = wb.create_sheet(t("balance", lang))
    body = c["balance"]
    if not body:
        ws["A1"] = t("missing", lang) + (c["balance_missing"] or "")
        return
    rows = [[t("row_" + r["row"], lang), r["node_name"] or r["node"], carrier(r["carrier"], lang), r["quantity"],
             unit_of(r["carrier"]), r["tce"]] for r in body["rows"]]
    row = _table(ws, 1, [t("row", lang), t("node", lang), t("carrier", lang), t("quantity", lang), t("unit", lang), "tce"],
                 rows, [None, None, None, NUMBER, None, NUMBER])
    row = _table(ws, row, [t("closure", lang), t("quantity", lang), "tce"],
                 [[carrier(r["carrier"], lang), r["imbalance"], r["imbalance_tce"]] for r in body["closure"]],
                 [None, NUMBER, NUMBER])
    for i, w in enumerate(body["warnings"]):
        ws.cell(row=row + i, column=1, value=f"{t('warnings', lang)}: {w}")


def _rest(wb: Workbook, c: dict[str, Any], lang: str) -> None:
    ws = wb.create_sheet(t("recommendations", lang))
    rows = [[t("rule_" + r["rule"], lang), r["subject"], r["saving_cny"], r["saving_tce"], r["saving_tco2"], r["status"],
             r["method"]] for r in c["recommendations"]]
    _table(ws, 1, [t("rule", lang), t("subject", lang), t("saving_cny", lang), t("saving_tce", lang), t("saving_tco2", lang),
                   t("status", lang), t("method", lang)], rows, [None, None, MONEY, NUMBER, NUMBER, None, None])
    ws = wb.create_sheet(t("quality", lang))
    q = c["quality"]
    row = _table(ws, 1, [t("item", lang), t("value", lang)],
                 [[t("hours_accounted", lang), q["hours_accounted"]], [t("hours_expected", lang), q["hours_expected"]],
                  [t("coverage", lang), q["coverage"]]], [None, None])
    ws.cell(row=4, column=2).number_format = PERCENT  # the coverage, the table's third row
    ws.cell(row=row, column=1, value=t("quarantined", lang)).font = Font(bold=True)
    _table(ws, row + 1, [t("point", lang), t("from", lang), t("to", lang), t("measured", lang), t("limit", lang),
                         t("unit", lang), t("status", lang)],
           [[r["point"], r["start"], r["end"], r["measured"], r["limit"], r["unit"], r["status"]] for r in q["quarantined"]],
           [None, None, None, NUMBER, NUMBER, None, None])
    ws = wb.create_sheet(t("factors", lang))
    _table(ws, 1, [t("factor", lang), t("kind", lang), t("value", lang), t("unit", lang), t("source", lang),
                   t("confidence", lang)],
           [[f["id"], f["kind"], f["value"], f["unit"], f["source"], f.get("confidence", "")] for f in c["factors"]],
           [None, None, "0.000000", None, None, None])


def render_xlsx(content: dict[str, Any]) -> bytes:
    """The workbook of one report."""
    lang = content["meta"]["lang"]
    wb = Workbook()
    for section in (_summary, _energy, _carbon, _cost, _comparison_and_top, _balance, _rest):
        section(wb, content, lang)
    wb.properties.title = f"{content['meta']['park']} {t(content['meta']['kind'], lang)} {content['meta']['period']}"
    wb.properties.creator = "Lingtan"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
