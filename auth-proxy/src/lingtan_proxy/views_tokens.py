"""API tokens in the portal: create (shown once), list, revoke."""

from __future__ import annotations

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from sqlalchemy import select

from lingtan_proxy.audit import utcnow
from lingtan_proxy.context import client_ip, state
from lingtan_proxy.guards import require
from lingtan_proxy.identity import IdentityError
from lingtan_proxy.models import ApiToken
from lingtan_proxy.rbac import PARK, enterprise_scope, permissions_of
from lingtan_proxy.tokens import KINDS, create_token, revoke_token

bp = Blueprint("tokens", __name__)


def _may_manage_all() -> bool:
    return "token.manage" in permissions_of(g.user)


def _visible_tokens() -> list[ApiToken]:
    stmt = select(ApiToken).order_by(ApiToken.created_at.desc())
    if not _may_manage_all():
        stmt = stmt.where(ApiToken.owner_id == g.user.id)
    return list(g.db.execute(stmt).scalars())


@bp.route("/tokens", methods=["GET", "POST"])
@require()
def tokens():
    perms = permissions_of(g.user)
    if not perms & {"token.own", "token.manage"}:
        abort(403)
    st = state()
    created = error = None
    scope = sorted(enterprise_scope(g.user, set(st.enterprises)))
    if request.method == "POST":
        if "token.own" not in perms:
            abort(403)
        try:
            days = int(request.form.get("days", "90"))
            rate = int(request.form.get("rate_per_minute") or 0) or None
        except ValueError:
            days, rate = -1, None
        try:
            _row, created = create_token(g.db, st.ctx, g.user, name=request.form.get("name", ""),
                                         enterprises=request.form.getlist("enterprises"),
                                         kinds=request.form.getlist("kinds"), days=days, rate_per_minute=rate,
                                         all_enterprises=set(st.enterprises), ip=client_ip())
        except IdentityError as exc:
            error = str(exc)
    return render_template("tokens.html", tokens=_visible_tokens(), created=created, error=error, kinds=KINDS,
                           scope=scope, park=PARK, enterprises=st.enterprises, now=utcnow(),
                           max_days=st.policy.tokens.max_days), (400 if error else 200)


@bp.post("/tokens/<int:token_id>/revoke")
@require()
def revoke(token_id: int):
    tok = g.db.get(ApiToken, token_id)
    if tok is None or (tok.owner_id != g.user.id and not _may_manage_all()):
        abort(404)
    revoke_token(g.db, state().ctx, tok, actor=g.user.username, ip=client_ip())
    return redirect(url_for("tokens.tokens"))
