"""A report as a PDF (reportlab), A4, with the CJK font embedded.

Lays out :func:`lingtan_calc.service.report_content.report_content` (docs/analysis.md §8).
The font is WenQuanYi Zen Hei from Debian's ``fonts-wqy-zenhei`` (installed by ``make up`` and
``make test``): it has TrueType outlines, which reportlab embeds, so the Chinese text renders on
any reader. ``LINGTAN_REPORT_FONT`` names another TrueType/TTC file.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from reportlab.graphics.charts.barcharts import HorizontalBarChart
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from lingtan_calc.adapters.report_text import carrier, maybe, t, unit_of

FONT = "LingtanCJK"
FONT_FILES = (Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"), Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"))
GREEN = colors.HexColor("#1B6E3A")


class FontMissing(RuntimeError):
    """No CJK TrueType font is installed: the PDF would show boxes instead of Chinese."""


def _register_font() -> None:
    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    candidates = [Path(os.environ["LINGTAN_REPORT_FONT"])] if os.environ.get("LINGTAN_REPORT_FONT") else list(FONT_FILES)
    for path in candidates:
        if path.exists():
            pdfmetrics.registerFont(TTFont(FONT, str(path), subfontIndex=0))
            return
    raise FontMissing(f"no CJK TrueType font at {', '.join(map(str, candidates))}: install Debian's fonts-wqy-zenhei "
                      "(scripts/install-system-deps.sh) or set LINGTAN_REPORT_FONT")


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=FONT, fontSize=9, leading=12, wordWrap="CJK")
    return {"body": base, "title": ParagraphStyle("title", parent=base, fontSize=16, leading=22, textColor=GREEN),
            "h2": ParagraphStyle("h2", parent=base, fontSize=12, leading=16, spaceBefore=8, spaceAfter=4, textColor=GREEN),
            "cell": ParagraphStyle("cell", parent=base, fontSize=8, leading=10)}


def _n(v: Any, digits: int = 3) -> str:
    return "—" if v is None else f"{v:,.{digits}f}"


def _pct(v: Any) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def _table(headers: list[str], rows: list[list[Any]], st: dict[str, ParagraphStyle], widths: list[float] | None = None):
    cell = st["cell"]
    data = [[Paragraph(str(h), cell) for h in headers]] + [[Paragraph(str(v), cell) for v in r] for r in rows]
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#E3F0E7")),
                               ("GRID", (0, 0), (-1, -1), 0.25, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return table


def _bars(labels: list[str], values: list[float]) -> Drawing:
    height = 20 + 14 * len(labels)
    drawing = Drawing(170 * mm, height)
    chart = HorizontalBarChart()
    chart.x, chart.y, chart.width, chart.height = 40 * mm, 10, 120 * mm, height - 20
    chart.data = [values]
    chart.categoryAxis.categoryNames = labels
    chart.categoryAxis.labels.fontName = FONT
    chart.valueAxis.labels.fontName = FONT
    chart.valueAxis.valueMin = min(0.0, *values)
    chart.bars[0].fillColor = GREEN
    drawing.add(chart)
    return drawing


def _head(c: dict[str, Any], lang: str, st) -> list:
    m = c["meta"]
    story = [Paragraph(f"{m['park']} · {t(m['kind'], lang)}", st["title"]),
             Paragraph(f"{t('entity', lang)}: {m['entity_name']}　{t('period', lang)}: {m['period']}　"
                       f"{t('generated', lang)}: {m['generated_at']}　{t('basis', lang)}: {t('basis_' + m['basis'], lang)}",
                       st["body"]), Spacer(1, 4 * mm), Paragraph(t("summary", lang), st["h2"])]
    keys = ["comprehensive_tce", "feedstock_tce", "non_production_tce", "renewable_self_tce", "scope1_tco2",
            "scope2_tco2", "scope2_market_tco2", "total_tco2", "total_market_tco2"]
    rows = [[t(k, lang), _n(c["totals"][k]), "tce" if k.endswith("tce") else "tCO₂"] for k in keys]
    if c["cost"]:
        rows.append([t("total_cost", lang), _n(c["cost"]["total_cost"], 2), "CNY"])
    story.append(_table([t("item", lang), t("value", lang), t("unit", lang)], rows, st, [90 * mm, 40 * mm, 30 * mm]))
    comp = [[t(b, lang), _n(body["total"]["base"]), _n(body["total"]["current"]), _n(body["total"]["change"]),
             _pct(body["total"]["change_ratio"])] for b in ("previous", "last_year") if (body := c["comparison"].get(b))]
    if comp:
        story += [Spacer(1, 3 * mm), _table([t("comparison", lang) + " (tce)", t("base", lang), t("current", lang),
                                             t("change", lang), t("change_ratio", lang)], comp, st)]
    return story


def _energy_and_carbon(c: dict[str, Any], lang: str, st) -> list:
    rows = [[carrier(r["carrier"], lang), _n(r.get("quantity")), unit_of(r["carrier"]), _n(r["tce"]), _pct(r["share"])]
            for r in c["energy"]]
    story = [Paragraph(t("energy", lang), st["h2"]),
             _table([t("carrier", lang), t("quantity", lang), t("unit", lang), "tce", t("share", lang)], rows, st)]
    if c["energy"]:
        story += [Spacer(1, 2 * mm), _bars([carrier(r["carrier"], lang) for r in c["energy"]], [r["tce"] for r in c["energy"]])]
    if c["intensities"]:
        story += [Paragraph(t("intensities", lang), st["h2"]),
                  _table([t("indicator", lang), t("product", lang), t("value", lang), t("unit", lang)],
                         [[r["indicator"], r["product"], _n(r["value"], 4), r["unit"]] for r in c["intensities"]], st)]
    story += [Paragraph(t("carbon", lang), st["h2"]),
              _table([t("category", lang), t("scope", lang), t("carrier", lang), t("tco2", lang), t("tco2_market", lang)],
                     [[maybe("category_" + r["category"], lang, r["category"]), r["scope"], carrier(r["carrier"], lang),
                       _n(r["tco2"]), _n(r["tco2_market"])]
                      for r in c["carbon"]], st)]
    return story


def _cost_and_top(c: dict[str, Any], lang: str, st) -> list:
    story = [Paragraph(t("cost", lang), st["h2"])]
    if c["cost"]:
        story.append(_table([t("carrier", lang), t("band", lang), t("quantity", lang), t("price", lang), t("cny", lang)],
                            [[carrier(r["carrier"], lang), maybe("band_" + r["band"], lang, "—") if r["band"] else "—",
                              _n(r["quantity"]), _n(r["price"], 4), _n(r["cost"], 2)] for r in c["cost"]["bands"]], st))
    else:
        story.append(Paragraph(t("missing", lang) + (c["cost_missing"] or ""), st["body"]))
    story += [Paragraph(t("top", lang), st["h2"]),
              _table([t("consumer", lang), "tce", t("share", lang), t("cumulative_share", lang), t("key", lang)],
                     [[f"{r['enterprise']}/{r['unit_id']}", _n(r["value"]), _pct(r["share"]), _pct(r["cumulative_share"]),
                       "★" if r["key"] else ""] for r in c["top_consumers"]], st)]
    return story


def _balance_and_rest(c: dict[str, Any], lang: str, st) -> list:
    story = [Paragraph(t("balance", lang), st["h2"])]
    body = c["balance"]
    if body and body["rows"]:
        story.append(_table([t("row", lang), t("node", lang), t("carrier", lang), t("quantity", lang), "tce"],
                            [[t("row_" + r["row"], lang), r["node_name"] or r["node"], carrier(r["carrier"], lang),
                              f"{_n(r['quantity'])} {unit_of(r['carrier'])}", _n(r["tce"])] for r in body["rows"]], st))
        story += [Paragraph(f"{t('warnings', lang)}: {w}", st["body"]) for w in body["warnings"]]
    else:
        story.append(Paragraph(t("missing", lang) + (c["balance_missing"] or t("none", lang)), st["body"]))
    story += [Paragraph(t("recommendations", lang), st["h2"]),
              _table([t("rule", lang), t("subject", lang), t("saving_cny", lang), t("saving_tce", lang), t("method", lang)],
                     [[t("rule_" + r["rule"], lang), r["subject"], _n(r["saving_cny"], 0), _n(r["saving_tce"], 2), r["method"]]
                      for r in c["recommendations"]], st, [30 * mm, 25 * mm, 22 * mm, 20 * mm, 73 * mm])]
    q = c["quality"]
    story += [Paragraph(t("quality", lang), st["h2"]),
              Paragraph(f"{t('hours_accounted', lang)}: {q['hours_accounted']} / {q['hours_expected']}（{_pct(q['coverage'])}）；"
                        f"{t('quarantined', lang)}: {len(q['quarantined'])}", st["body"]),
              Paragraph(t("factors", lang), st["h2"]),
              _table([t("factor", lang), t("value", lang), t("unit", lang), t("source", lang), t("confidence", lang)],
                     [[f["id"], _n(f["value"], 6), f["unit"], f["source"], f.get("confidence", "")] for f in c["factors"]], st,
                     [45 * mm, 20 * mm, 20 * mm, 60 * mm, 25 * mm])]
    return story


def render_pdf(content: dict[str, Any]) -> bytes:
    """The PDF of one report (raises :class:`FontMissing` without a CJK font)."""
    _register_font()
    lang = content["meta"]["lang"]
    st = _styles()
    buf = io.BytesIO()
    m = content["meta"]
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                            bottomMargin=16 * mm, title=f"{m['park']} {t(m['kind'], lang)} {m['period']}", author="Lingtan")
    story = (_head(content, lang, st) + _energy_and_carbon(content, lang, st) + _cost_and_top(content, lang, st)
             + _balance_and_rest(content, lang, st))
    doc.build(story)
    return buf.getvalue()
