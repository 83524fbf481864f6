"""The audit viewer: filter, statistics, report, export (CSV, XLSX), chain check. Audit administrators only.

Pages under ``/audit``; the same as JSON under ``/api/v1/audit`` (session only, never API tokens).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from flask import Blueprint, Response, g, jsonify, render_template, request

from lingtan.errors import ApiError
from lingtan_proxy import audit
from lingtan_proxy.context import client_ip, state
from lingtan_proxy.guards import require

bp = Blueprint("audit", __name__)
PAGE = 50


def _day(name: str, default: datetime | None) -> datetime | None:
    """A yyyy-mm-dd (Asia/Shanghai) or ISO time query parameter as naive UTC; the ``to`` day is inclusive."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    try:
        if len(raw) == 10:
            local = datetime.combine(datetime.strptime(raw, "%Y-%m-%d").date(), time(), tzinfo=audit.TZ)
            if name == "to":
                local += timedelta(days=1)
        else:
            local = datetime.fromisoformat(raw)
            local = local if local.tzinfo else local.replace(tzinfo=audit.TZ)
    except ValueError:
        raise ApiError(400, "bad_time", f"{name} {raw!r} is not yyyy-mm-dd or an ISO 8601 time", name) from None
    return local.astimezone(UTC).replace(tzinfo=None)


def _filter() -> audit.AuditFilter:
    result = request.args.get("result", "")
    if result and result not in audit.RESULTS:
        raise ApiError(400, "bad_result", f"result {result!r} is not one of {', '.join(audit.RESULTS)}", "result")
    return audit.AuditFilter(start=_day("from", None), end=_day("to", None),
                             username=request.args.get("user", "").strip(), action=request.args.get("action", "").strip(),
                             result=result, text=request.args.get("q", "").strip())


def _page() -> int:
    try:
        return max(0, int(request.args.get("page", "0")))
    except ValueError:
        raise ApiError(400, "bad_page", f"page {request.args.get('page')!r} is not a number", "page") from None


@bp.get("/audit")
@require("audit.read")
def viewer():
    flt = _filter()
    page = _page()
    total, rows = audit.query(g.db, flt, limit=PAGE, offset=page * PAGE)
    stats = audit.statistics(g.db, flt)
    return render_template("audit.html", rows=[audit.row_dict(r) for r in rows], total=total, page=page, pages=PAGE,
                           stats=stats, args=request.args)


@bp.get("/audit/report")
@require("audit.read")
def report_page():
    flt = _filter()
    return render_template("audit_report.html", report=audit.report(g.db, flt), args=request.args,
                           chain=audit.verify(g.db, state().ctx.audit_key))


def _export(fmt: str):
    flt = _filter()
    st = state()
    st.ctx.audit(g.db, user=g.user.username, ip=client_ip(), action="audit.export", obj=fmt,
                 detail={"query": request.query_string.decode()[:300]})
    stamp = datetime.now(audit.TZ).strftime("%Y%m%d-%H%M%S")
    if fmt == "csv":
        return Response(audit.export_csv(audit.iter_matching(g.db, flt)), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'})
    if fmt == "xlsx":
        body = audit.export_xlsx(audit.iter_matching(g.db, flt), audit.statistics(g.db, flt))
        return Response(body, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.xlsx"'})
    raise ApiError(400, "bad_format", f"format {fmt!r} is not csv or xlsx", "format")


@bp.get("/audit/export.<fmt>")
@require("audit.export")
def export(fmt: str):
    return _export(fmt)


@bp.get("/api/v1/audit")
@require("audit.read")
def api_query():
    flt = _filter()
    page = _page()
    total, rows = audit.query(g.db, flt, limit=PAGE, offset=page * PAGE)
    return jsonify({"total": total, "page": page, "page_size": PAGE, "rows": [audit.row_dict(r) for r in rows]})


@bp.get("/api/v1/audit/stats")
@require("audit.read")
def api_stats():
    return jsonify(audit.statistics(g.db, _filter()))


@bp.get("/api/v1/audit/report")
@require("audit.read")
def api_report():
    return jsonify(audit.report(g.db, _filter()))


@bp.get("/api/v1/audit/verify")
@require("audit.read")
def api_verify():
    rep = audit.verify(g.db, state().ctx.audit_key)
    return jsonify({"ok": rep.ok, "checked": rep.checked, "first_seq": rep.first_seq, "last_seq": rep.last_seq,
                    "problems": rep.problems})


@bp.get("/api/v1/audit/export")
@require("audit.export")
def api_export():
    return _export(request.args.get("format", "csv"))
