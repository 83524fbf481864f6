"""The auth proxy's Flask application: app factory, identity per request, CSRF, security headers.

Blueprints, one per feature: :mod:`views_auth` (login, factors, password, logout), :mod:`views_admin`
(users, roles), :mod:`views_audit` (viewer, statistics, report, export), :mod:`views_tokens` (API tokens),
:mod:`views_portal` (overview, profile), :mod:`api` (read API ``/api/v1``) and :mod:`upstream`
(``/grafana/`` and ``/calc/``). Errors under ``/api/`` and ``/calc/`` are JSON
(``{"error": {"status", "code", "message", "field"}}``, the calc-service's format); pages get HTML.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, g, jsonify, render_template, request
from flask_login import LoginManager
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker
from werkzeug.exceptions import HTTPException

from lingtan.db import make_engine, session_factory
from lingtan.errors import ApiError, error_body, internal_error
from lingtan.park.loader import load_park
from lingtan.park.model import Park
from lingtan.settings import Settings, load_settings
from lingtan_proxy import (
    api,
    audit,
    sessions,
    upstream,
    views_admin,
    views_analysis,
    views_audit,
    views_auth,
    views_budget,
    views_help,
    views_portal,
    views_tokens,
)
from lingtan_proxy.certs import ParkCA, default_directory
from lingtan_proxy.context import (
    EXTENSION,
    JSON_PREFIXES,
    LOGIN_CSRF_COOKIE,
    ProxyState,
    state,
    wants_json,
)
from lingtan_proxy.crypto import SecretBox, load_or_create_key, subkey
from lingtan_proxy.i18n import pick_locale, translate
from lingtan_proxy.identity import ProxyContext
from lingtan_proxy.models import AuditRecord, User
from lingtan_proxy.policy import SecurityPolicy, load_policy
from lingtan_proxy.rbac import ensure_builtin_roles, permissions_of
from lingtan_proxy.tokens import resolve_token

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
login_manager = LoginManager()


def create_app(settings: Settings | None = None, *, policy: SecurityPolicy | None = None,
               park: Park | None = None) -> Flask:
    settings = settings or load_settings()
    state_dir = Path(settings.state_dir)
    policy = policy or load_policy(state_dir / "security.yaml")
    master = load_or_create_key(state_dir / "proxy" / "secret.key")
    # one pooled connection per server thread, and a few for the scheduler-free rest
    db = session_factory(make_engine(settings.sql_url, pool_size=settings.proxy_threads + 4, max_overflow=8))
    ctx = ProxyContext(policy=policy, audit_key=subkey(master, "lingtan.audit.chain"), box=SecretBox(master))
    park = park or load_park(settings.park_file)
    with db() as s:
        audit.ensure_head(s, ctx.audit_key)
        ensure_builtin_roles(s)
    ca = ParkCA.ensure(default_directory(state_dir), park.park.name)
    app = Flask("lingtan_proxy", template_folder=str(HERE / "templates"), static_folder=str(HERE / "static"),
                static_url_path="/static")
    app.secret_key = subkey(master, "lingtan.flask")
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    app.config.update(MAX_CONTENT_LENGTH=32 * 1024 * 1024, SESSION_COOKIE_SECURE=True,
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict")
    app.extensions[EXTENSION] = ProxyState(settings, policy, db, ctx, park, ca,
                                                 {e.id: e.name for e in park.enterprises})
    if settings.proxy_trusted_hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_trusted_hops, x_proto=1)  # type: ignore[method-assign]
    login_manager.init_app(app)

    for module in (views_auth, views_portal, views_analysis, views_budget, views_admin, views_audit, views_tokens,
                   views_help, api, upstream):
        app.register_blueprint(module.bp)
    app.before_request(_identify)
    app.before_request(_check_csrf)
    app.after_request(_security_headers)
    app.teardown_request(teardown)
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    app.context_processor(_template_globals)
    app.add_template_filter(_local_time, "localtime")
    with db() as s:
        _audit_policy_change(s, ctx, policy)
    return app


def _local_time(value, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A naive-UTC database time as Asia/Shanghai wall-clock text ('' for None)."""
    if value is None:
        return ""
    return audit.local_time(value).strftime(fmt)


def _audit_policy_change(s, ctx: ProxyContext, policy: SecurityPolicy) -> None:
    """Record the security policy in the audit log whenever it differs from the last one recorded."""
    current = policy.model_dump(mode="json")
    last = s.execute(select(AuditRecord.detail).where(AuditRecord.action == "config.policy")
                     .order_by(AuditRecord.seq.desc()).limit(1)).scalar_one_or_none()
    if last is None or json.loads(last).get("policy") != current:
        before = json.loads(last).get("policy") if last else None
        changed = sorted(k for k in current if before is None or before.get(k) != current[k])
        ctx.audit(s, user="system", ip="local", action="config.policy", obj="security.yaml",
                  detail={"policy": current, "changed": changed})


@login_manager.request_loader
def _load_user(_request):
    return getattr(g, "user", None)


def _identify() -> None:
    """Set g.user (complete login or API token), g.login_session, g.pending_user, g.token, g.db and g.locale.

    For a complete session ``g.user`` comes from the process's cache (read-only, detached) as long as the
    identity epoch read with the session row is unchanged; views that change the user load it with
    :func:`user_row`. A pending session (password given, second factor not yet) always reads the database.
    """
    st = state()
    g.db = LazySession(st.db)
    g.user = g.login_session = g.token = g.pending_user = None
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer ") and request.path.startswith("/api/"):
        g.token = resolve_token(g.db, auth[7:].strip())
        if g.token is not None:
            g.user = g.token.owner
    else:
        info = sessions.load(st.session_reader, g.db, request.cookies.get(sessions.COOKIE), st.policy.session)
        if info is not None:
            user = st.cached_user(g.db, info) if info.stage == "complete" else g.db.get(User, info.user_id)
            if user is None or user.disabled:
                sessions.revoke(g.db, info)
            else:
                g.login_session = info
                if info.stage == "complete":
                    g.user = user
                else:
                    g.pending_user = user
    g.locale = pick_locale(g.user.locale if g.user else None, request.args.get("lang") or request.cookies.get("lang"),
                           request.headers.get("Accept-Language"))


class LazySession:
    """The request's SQLAlchemy session, opened on first use: a proxied request whose session is known
    reads one row through the engine and never needs one."""

    __slots__ = ("_factory", "_session")

    def __init__(self, factory: sessionmaker):
        self._factory, self._session = factory, None

    def __getattr__(self, name: str):
        if self._session is None:
            self._session = self._factory()
        return getattr(self._session, name)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


def teardown(_exc=None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


def _check_csrf():
    """Every state-changing request carries the session's CSRF token (or, before login, the login cookie's).

    Token-authenticated API calls carry no ambient credentials and are exempt. Grafana's own front end
    cannot send our token: for ``/grafana/`` the request's Origin (or Referer) must be this site, and the
    session cookie is SameSite=Strict anyway.
    """
    if request.method in SAFE_METHODS or g.token is not None:
        return None
    if request.path.startswith("/grafana/"):
        origin = request.headers.get("Origin") or request.headers.get("Referer") or ""
        if origin and (origin == request.host_url.rstrip("/") or origin.startswith(request.host_url)):
            return None
        raise ApiError(403, "csrf_failed", "cross-site request to Grafana refused (Origin/Referer is not this site)")
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
    if g.login_session is not None:
        expected = g.login_session.csrf_token
    else:
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not sent or not expected or not hmac.compare_digest(sent, expected):
        if request.path.startswith(JSON_PREFIXES):
            raise ApiError(403, "csrf_failed", "missing or wrong CSRF token (X-CSRF-Token header or csrf_token field)")
        return render_template("message.html", message=translate("csrf_failed", g.locale)), 403
    return None


def csrf_token() -> str:
    if g.get("login_session") is not None:
        return g.login_session.csrf_token
    token = g.get("login_csrf") or request.cookies.get(LOGIN_CSRF_COOKIE)
    if not token:
        token = secrets.token_urlsafe(32)
    g.login_csrf = token
    return token


def _security_headers(resp):
    # HSTS: one year (RFC 6797); only ever served over HTTPS, the plain port only redirects
    resp.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers.setdefault("Referrer-Policy", "same-origin")
    if not request.path.startswith("/grafana/"):
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers.setdefault("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; "
                                "style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
        if g.get("user") is not None or g.get("login_session") is not None:
            resp.headers.setdefault("Cache-Control", "no-store")
    if g.get("login_csrf") and not request.cookies.get(LOGIN_CSRF_COOKIE):
        resp.set_cookie(LOGIN_CSRF_COOKIE, g.login_csrf, secure=True, httponly=True, samesite="Strict", path="/")
    if request.args.get("lang") in ("zh", "en"):
        resp.set_cookie("lang", request.args["lang"], secure=True, samesite="Lax", path="/", max_age=365 * 86400)
    return resp


def _api_error(e: ApiError):
    if wants_json():
        return jsonify(error_body(e.status, e.code, e.message, e.field)), e.status
    return render_template("message.html", message=e.message, status=e.status), e.status


def _http_error(e: HTTPException):
    code = e.code or 500
    if wants_json():
        return jsonify(error_body(code, (e.name or "error").lower().replace(" ", "_"), e.description or "")), code
    key = {403: "forbidden", 404: "not_found"}.get(code)
    message = translate(key, g.get("locale", "zh")) if key else (e.description or e.name)
    return render_template("message.html", message=message, status=code), code


def _unexpected(e: Exception):
    body = internal_error(log, f"{request.method} {request.path}")
    return (jsonify(body), 500) if wants_json() else (render_template("message.html", message=body["error"]["message"],
                                                                      status=500), 500)


def _template_globals() -> dict[str, Any]:
    user = g.get("user")
    perms = permissions_of(user) if user is not None else set()
    locale = g.get("locale", "zh")
    st = state()
    return {"_": lambda key, **kw: translate(key, locale, **kw), "locale": locale, "current": user, "perms": perms,
            "csrf_token": csrf_token, "grafana_enabled": bool(st.settings.grafana_url),
            "park_name": st.park.park.name}
