"""Login, second factors, password change, enrolment and logout.

Stages of a login session (:mod:`lingtan_proxy.sessions`): ``password`` (first factor given, second
pending), ``change_password`` (first login or expired password), ``enrol`` (the role requires two factors
and none is set up), ``complete``. A user who has set up a second factor is always asked for it.
"""

from __future__ import annotations

import io

import segno
from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for

from lingtan_proxy import identity, sessions
from lingtan_proxy.audit import utcnow
from lingtan_proxy.context import client_ip, state, user_row
from lingtan_proxy.i18n import translate
from lingtan_proxy.passwords import password_expired
from lingtan_proxy.rbac import certificate_required, mfa_required

bp = Blueprint("auth", __name__)


def _(key: str, **kw) -> str:
    return translate(key, g.locale, **kw)


def peer_certificate() -> bytes | None:
    """The client certificate (DER) the TLS handshake verified against the park CA, if any."""
    sock = request.environ.get("gunicorn.socket")
    getpeercert = getattr(sock, "getpeercert", None)
    try:
        return getpeercert(binary_form=True) if getpeercert else None
    except ValueError:  # not a TLS socket
        return None


def certificate_user(s):
    """The user the presented client certificate belongs to, or None (reason audited by the caller)."""
    from lingtan_proxy.certs import CertificateRejected, user_for_certificate

    der = peer_certificate()
    if not der:
        return None, "no client certificate"
    try:
        return user_for_certificate(s, state().ca, der), ""
    except CertificateRejected as exc:
        return None, str(exc)


def _set_session_cookie(resp: Response, token: str) -> Response:
    resp.set_cookie(sessions.COOKIE, token, secure=True, httponly=True, samesite="Strict", path="/")
    return resp


def _next_stage(user, factors: list[str]) -> str:
    st = state()
    if user.must_change_password or password_expired(user.password_changed_at, st.policy.password, utcnow()):
        return "change_password"
    if len(factors) >= 2:
        return "complete"
    if certificate_required(user):
        return "password"  # only a client certificate completes this login
    _, cert_reason = certificate_user(g.db)
    has_cert = cert_reason == ""
    if identity.has_second_factor(user) or (has_cert and mfa_required(user)):
        return "password"
    return "enrol" if mfa_required(user) else "complete"


def _go(stage: str) -> Response:
    target = {"password": "auth.second_factor", "change_password": "auth.password", "enrol": "auth.enrol_totp",
              "complete": "portal.overview"}[stage]
    return redirect(url_for(target))


def _advance(user, factors: list[str]) -> Response:
    """Open the session for the next stage under a new id (ending the current one) and go there."""
    stage = _next_stage(user, factors)
    if g.login_session is not None:
        sessions.revoke(g.db, g.login_session)
    token = sessions.create(g.db, user_id=user.id, stage=stage, factors=factors, ip=client_ip(),
                            user_agent=request.headers.get("User-Agent", ""))
    if stage == "complete":
        user.last_login_at = utcnow()
        g.db.commit()
        identity.clear_failures(g.db, user.username)
        state().ctx.audit(g.db, user=user.username, ip=client_ip(), action="login.success",
                          detail={"factors": factors})
    return _set_session_cookie(_go(stage), token)


def _pending(*stages: str):
    """The pending-login session in one of ``stages`` (a complete session may change password/enrol too)."""
    row = g.login_session
    if row is None:
        abort(redirect(url_for("auth.login")))
    if row.stage not in stages and not (row.stage == "complete" and "complete" in stages):
        abort(_go(row.stage))
    return row, user_row()


@bp.route("/login", methods=["GET", "POST"])
def login():
    if g.user is not None:
        return redirect(url_for("portal.overview"))
    error = None
    if request.method == "POST":
        st = state()
        outcome = identity.check_password(g.db, st.ctx, request.form.get("username", ""),
                                          request.form.get("password", ""), client_ip())
        if outcome.user is not None:  # an older session (planted or pending) never survives a login
            return _advance(outcome.user, ["password"])
        error = _("login_failed")  # one message for wrong password, unknown user, lockout, disabled
    return render_template("login.html", error=error), (401 if error else 200)


@bp.route("/login/second-factor", methods=["GET", "POST"])
def second_factor():
    row, user = _pending("password")
    error = None
    cert_user, cert_reason = certificate_user(g.db)
    cert_ok = cert_user is not None and cert_user.id == user.id
    cert_only = certificate_required(user)
    if request.method == "POST":
        ctx = state().ctx
        method = request.form.get("method", "totp")
        code = request.form.get("code", "")
        if method == "certificate":
            ok = cert_ok
        elif cert_only:  # the role accepts only the certificate
            ok = False
        elif method == "totp":
            ok = identity.check_totp(g.db, ctx, user, code, ip=client_ip())
        else:
            ok = method == "recovery" and identity.use_recovery_code(g.db, ctx, user, code, ip=client_ip())
        if ok:
            return _advance(user, [*row.factors, method])
        identity.record_failure(g.db, user.username, client_ip(), utcnow(), ctx.policy)
        ctx.audit(g.db, user=user.username, ip=client_ip(), action="login.failure", result="failure",
                  detail={"reason": f"bad_{method}", "certificate": cert_reason or None})
        if identity.locked_until(g.db, state().policy, user.username, client_ip(), utcnow()) is not None:
            sessions.revoke(g.db, row)
            ctx.audit(g.db, user=user.username, ip=client_ip(), action="login.locked", result="denied")
            return redirect(url_for("auth.login"))
        error = _("cert_missing") if method == "certificate" else _("totp_failed")
    has_totp = user.totp is not None and user.totp.confirmed and not cert_only
    if cert_only and not cert_ok and error is None:
        error = _("cert_missing")
    return render_template("second_factor.html", error=error, has_totp=has_totp, cert_ok=cert_ok,
                           cert_only=cert_only), (401 if error else 200)


@bp.route("/password", methods=["GET", "POST"])
def password():
    row, user = _pending("change_password", "complete")
    problems: list[str] = []
    if request.method == "POST":
        new, repeat = request.form.get("new_password", ""), request.form.get("repeat_password", "")
        if new != repeat:
            problems = ["pw_mismatch"]
        else:
            problems = identity.change_password(g.db, state().ctx, user, request.form.get("current_password", ""),
                                                new, ip=client_ip())
        if not problems:
            if row.stage == "complete":  # a voluntary change ends every other session
                sessions.revoke_all(g.db, user.id)
                token = sessions.create(g.db, user_id=user.id, stage="complete", factors=row.factors, ip=client_ip(),
                                        user_agent=request.headers.get("User-Agent", ""))
                return _set_session_cookie(redirect(url_for("portal.profile", saved=1)), token)
            return _advance(user, row.factors)
    pp = state().policy.password
    return render_template("password.html", problems=[_(p) for p in problems], forced=row.stage != "complete",
                           rules=_("pw_rules", n=pp.min_length, k=pp.min_classes, h=pp.history)), \
        (400 if problems else 200)


@bp.route("/mfa/totp", methods=["GET", "POST"])
def enrol_totp():
    row, user = _pending("enrol", "complete")
    ctx = state().ctx
    error = None
    if request.method == "POST":
        codes = identity.confirm_totp(g.db, ctx, user, request.form.get("code", ""), ip=client_ip())
        if codes:
            if row.stage == "enrol":
                token = sessions.rotate(g.db, row, stage="complete", factors=[*row.factors, "totp"])
                user.last_login_at = utcnow()
                g.db.commit()
                ctx.audit(g.db, user=user.username, ip=client_ip(), action="login.success",
                          detail={"factors": [*row.factors, "totp"]})
                resp = Response(render_template("recovery_codes.html", codes=codes, csrf_override=None))
                return _set_session_cookie(resp, token)
            return render_template("recovery_codes.html", codes=codes)
        error = _("totp_failed")
    if user.totp is not None and user.totp.confirmed:
        return redirect(url_for("portal.profile"))
    uri = identity.begin_totp(g.db, ctx, user) if user.totp is None or request.method == "GET" else None
    secret = identity.totp_secret(ctx, user)
    return render_template("enrol_totp.html", error=error, secret=secret, uri=uri,
                           required=row.stage == "enrol"), (400 if error else 200)


@bp.get("/mfa/totp/qr.svg")
def totp_qr():
    row, user = _pending("enrol", "complete")
    if user.totp is None or user.totp.confirmed:
        abort(404)
    import pyotp

    uri = pyotp.TOTP(identity.totp_secret(state().ctx, user)).provisioning_uri(name=user.username,
                                                                                issuer_name=state().ctx.issuer)
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=5, border=2)
    return Response(out.getvalue(), mimetype="image/svg+xml", headers={"Cache-Control": "no-store"})


@bp.post("/mfa/totp/remove")
def remove_totp():
    if g.user is None:
        return redirect(url_for("auth.login"))
    identity.remove_totp(g.db, state().ctx, user_row(), actor=g.user.username, ip=client_ip())
    return redirect(url_for("portal.profile"))


@bp.post("/mfa/recovery-codes")
def recovery_codes():
    if g.user is None:
        return redirect(url_for("auth.login"))
    user = user_row()
    if user.totp is None or not user.totp.confirmed:
        abort(400)
    codes = identity.new_recovery_codes(g.db, state().ctx, user, ip=client_ip())
    return render_template("recovery_codes.html", codes=codes)


@bp.post("/logout")
def logout():
    row = g.login_session
    if row is not None:
        sessions.revoke(g.db, row)
        state().ctx.audit(g.db, user=(g.user or g.pending_user).username, ip=client_ip(), action="logout")
    resp = redirect(url_for("auth.login"))
    resp.delete_cookie(sessions.COOKIE, path="/", secure=True, samesite="Strict")
    return resp


@bp.post("/logout/all")
def logout_all():
    if g.user is None:
        return redirect(url_for("auth.login"))
    n = sessions.revoke_all(g.db, g.user.id)
    state().ctx.audit(g.db, user=g.user.username, ip=client_ip(), action="logout.all", detail={"sessions": n})
    resp = redirect(url_for("auth.login"))
    resp.delete_cookie(sessions.COOKIE, path="/", secure=True, samesite="Strict")
    return resp
