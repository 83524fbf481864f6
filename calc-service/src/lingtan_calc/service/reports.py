"""Generating the daily, monthly and annual reports (docs/analysis.md §8).

On schedule, after the daily late-data pass: the day report of yesterday for the park and each
enterprise; on the first of a month also last month's; on 1 January also last year's. A pass
also writes any of the last week's reports that is missing (the service was stopped). After a
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
from lingtan_calc.adapters.report_store import ReportRow, archive, current_reports, overlapping
from lingtan_calc.adapters.report_xlsx import render_xlsx
from lingtan_calc.service.report_content import label_of, period_of, report_content
from lingtan_calc.service.report_mail import enqueue

log = logging.getLogger(__name__)
TZ = "Asia/Shanghai"
RENDERERS = {"xlsx": render_xlsx, "pdf": render_pdf}


def reports_dir(svc) -> Path:
    return Path(svc.settings.state_dir) / "reports"


def generate(svc, entity: str, kind: str, start: pd.Timestamp, lang: str, reason: str,
             formats: tuple[str, ...] = ("xlsx", "pdf"), deliver: bool = False) -> list[ReportRow]:
    """Gather, render and archive one report in ``formats``; raises ApiError (404 no_data, 400 bad input).
    ``deliver``: also put it in the e-mail outbox (scheduled and recalculated reports)."""
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
    if deliver:
        enqueue(svc, rows, reason)
    return rows


#: how many closed days back a scheduled pass looks for reports not yet written (after a stop of the service)
CATCH_UP_DAYS = 7


def due(now: pd.Timestamp) -> list[tuple[str, pd.Timestamp]]:
    """The periods closed by the start of today that a report may be missing for: the last
    :data:`CATCH_UP_DAYS` days, last month and last year."""
    today = now.tz_convert(TZ).normalize()
    out = [("day", today - pd.Timedelta(days=d)) for d in range(CATCH_UP_DAYS, 0, -1)]
    last_month = (today.replace(day=1) - pd.Timedelta(days=1)).replace(day=1)  # the month before this one
    return out + [("month", last_month), ("year", today.replace(year=today.year - 1, month=1, day=1))]


def _written(svc) -> set[tuple[str, str, str, str]]:
    with svc.sessions() as s:
        return {(r.entity, r.kind, r.period, r.lang) for r in current_reports(s)}


def scheduled(svc, now: pd.Timestamp) -> int:
    """Write the due reports not written yet; a period without data is skipped (logged), never an error."""
    written, count = _written(svc), 0
    for kind, start in due(now):
        for entity in ["park", *(e.id for e in svc.park.enterprises)]:
            for lang in svc.settings.report_languages:
                if (entity, kind, label_of(kind, start), lang) in written:
                    continue
                try:
                    count += len(generate(svc, entity, kind, start, lang, "schedule", deliver=True))
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
                                  tuple(sorted(formats)), deliver=True))
        except ApiError as exc:
            log.warning("report %s %s %s not regenerated: %s", entity, kind, period_start.date(), exc.message)
    return count
