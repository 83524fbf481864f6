"""Generating the daily, monthly and annual reports (docs/analysis.md §8).

On schedule, after the daily late-data pass: the day report of yesterday for the park and each
enterprise; on the first of a month also last month's; on 1 January also last year's. After a
recalculation, every current report whose period it touched is generated again (the earlier
file is kept, superseded). On demand: ``POST /api/v1/reports``. Each report is written in the
configured languages (``LINGTAN_REPORT_LANGUAGES``, default ``zh``) as XLSX and PDF.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from lingtan.errors import ApiError
from lingtan_calc.adapters.meter_events import local
from lingtan_calc.adapters.report_pdf import render_pdf
from lingtan_calc.adapters.report_store import ReportRow, archive, overlapping
from lingtan_calc.adapters.report_xlsx import render_xlsx
from lingtan_calc.service.report_content import period_of, report_content

log = logging.getLogger(__name__)
TZ = "Asia/Shanghai"
RENDERERS = {"xlsx": render_xlsx, "pdf": render_pdf}


def reports_dir(svc) -> Path:
    return Path(svc.settings.state_dir) / "reports"


def generate(svc, entity: str, kind: str, start: pd.Timestamp, lang: str, reason: str,
             formats: tuple[str, ...] = ("xlsx", "pdf")) -> list[ReportRow]:
    """Gather, render and archive one report in ``formats``; raises ApiError (404 no_data, 400 bad input)."""
    if lang not in ("zh", "en"):
        raise ApiError(400, "bad_lang", f"lang {lang!r} is not zh or en", "lang")
    bad = [f for f in formats if f not in RENDERERS]
    if bad or not formats:
        raise ApiError(400, "bad_format", f"format {bad or formats!r}: use xlsx and/or pdf", "format")
    content = report_content(svc, entity, kind, start, lang)
    rows = []
    with svc.sessions() as s:
        for fmt in formats:
            rows.append(archive(s, reports_dir(svc), content["meta"], fmt, RENDERERS[fmt](content), reason))
    log.info("report %s %s %s (%s) written: %s", entity, kind, content["meta"]["period"], lang,
             ", ".join(f"{r.format} {r.size} B" for r in rows))
    return rows


def due(now: pd.Timestamp) -> list[tuple[str, pd.Timestamp]]:
    """The periods that closed at the start of today: yesterday, and last month or last year when they did."""
    today = now.tz_convert(TZ).normalize()
    out = [("day", today - pd.Timedelta(days=1))]
    if today.day == 1:
        out.append(("month", (today - pd.Timedelta(days=1)).replace(day=1)))
        if today.month == 1:
            out.append(("year", today.replace(year=today.year - 1)))
    return out


def scheduled(svc, now: pd.Timestamp) -> int:
    """Generate the reports that are due; a period without data is skipped (logged), never an error."""
    count = 0
    for kind, start in due(now):
        for entity in ["park", *(e.id for e in svc.park.enterprises)]:
            for lang in svc.settings.report_languages:
                try:
                    count += len(generate(svc, entity, kind, start, lang, "schedule"))
                except ApiError as exc:
                    log.info("no %s report of %s for %s: %s", kind, entity, start.date(), exc.message)
    return count


def after_recalculation(svc, start: pd.Timestamp, end: pd.Timestamp, reason: str) -> int:
    """Generate again every current report whose period the recalculated range touched."""
    touched: dict[tuple, set[str]] = {}
    with svc.sessions() as s:
        for r in overlapping(s, start, end):
            touched.setdefault((r.entity, r.kind, local(r.period_start), r.lang), set()).add(r.format)
    count = 0
    for (entity, kind, period_start, lang), formats in sorted(touched.items()):
        try:
            count += len(generate(svc, entity, kind, period_of(kind, period_start)[0], lang, f"recalculated: {reason}",
                                  tuple(sorted(formats))))
        except ApiError as exc:
            log.warning("report %s %s %s not regenerated: %s", entity, kind, period_start.date(), exc.message)
    return count
