"""Reverse proxy to Grafana (``/grafana/``, auth.proxy mode) and to the calc-service (``/calc/``).

Grafana: the proxy sets ``X-WEBAUTH-USER``/``-NAME``/``-EMAIL``/``-ROLE`` from RBAC and always strips
every identity header a client sent (X-WEBAUTH-*, X-Lingtan-*, Remote-*, X-Forwarded-*, Authorization),
because Grafana believes them (Grafana docs, "Configure auth proxy authentication"; docs/security.md). WebSocket upgrades (Grafana Live) are tunnelled.
Grafana's own login, basic auth and anonymous access are off in ``grafana/grafana.ini``, and Grafana's port
is reachable only from the proxy.

Calc-service: every route has a rule (method, path, permission, scope check, audit action); anything
else is 404. Entity parameters and imported rows must lie within the caller's data scope.
"""

from __future__ import annotations

import errno
import json
import re
import selectors
import socket
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from flask import Blueprint, Response, g, jsonify, request

from lingtan.errors import ApiError
from lingtan.uploads import uploaded_table
from lingtan_proxy.api import calc_get
from lingtan_proxy.context import LOGIN_CSRF_COOKIE, client_ip, state
from lingtan_proxy.guards import deny, require
from lingtan_proxy.rbac import PARK, enterprise_scope, grafana_role, permissions_of
from lingtan_proxy.sessions import COOKIE, mark_grafana_audited

bp = Blueprint("upstream", __name__)
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "host"}
# answers up to this size are read whole and sent with their length; larger ones are streamed
SMALL_BODY = 256 * 1024
# identity headers an upstream may believe: never passed from a client
SPOOFABLE_PREFIXES = ("x-webauth", "x-lingtan", "remote-", "x-forwarded", "x-real-ip", "x-auth-request",
                      "x-grafana-user", "authorization")
GRAFANA_HEADERS = ("X-WEBAUTH-USER", "X-WEBAUTH-NAME", "X-WEBAUTH-EMAIL", "X-WEBAUTH-ROLE")


def client_headers() -> dict[str, str]:
    """The client's request headers minus hop-by-hop and every spoofable identity header."""
    out = {}
    for name, value in request.headers.items():
        low = name.lower()
        if low in HOP_BY_HOP or low.startswith(SPOOFABLE_PREFIXES) or low in ("cookie", "content-length"):
            continue
        out[name] = value
    cookies = [f"{k}={v}" for k, v in request.cookies.items() if k not in (COOKIE, LOGIN_CSRF_COOKIE, "lang")]
    if cookies:
        out["Cookie"] = "; ".join(cookies)
    out["X-Forwarded-For"] = client_ip()
    out["X-Forwarded-Proto"] = "https"
    out["X-Forwarded-Host"] = request.host
    return out


def safe_path(path: str) -> str:
    """``path`` re-quoted for the upstream; any dot segment, backslash or control character is refused."""
    segments = path.split("/")
    if any(seg in (".", "..") for seg in segments) or "\\" in path or any(ord(c) < 32 for c in path):
        raise ApiError(400, "bad_path", f"path {path!r} contains a dot segment, a backslash or a control character")
    return quote(path, safe="/:@!$&'()*+,;=-._~")


def _response_headers(raw_headers) -> list[tuple[str, str]]:
    return [(k, v) for k, v in raw_headers if k.lower() not in HOP_BY_HOP]


def _forward(upstream, path_qs: str, headers: dict[str, str], body: bytes | None = None) -> Response:
    """Send the request to ``upstream`` (an :class:`~lingtan_proxy.httpclient.Upstream`) and stream its answer."""
    try:
        up = upstream.request(request.method, path_qs, headers, body or None)
    except OSError as exc:
        raise ApiError(502, "upstream_unavailable", f"{upstream.netloc}: {exc.__class__.__name__}") from None
    headers = _response_headers(up.headers)
    length = next((v for k, v in headers if k.lower() == "content-length"), None)
    if length is not None and length.isdigit() and int(length) <= SMALL_BODY:
        return Response(up.read(), status=up.status, headers=headers)
    return Response(up.iter_body(), status=up.status, headers=[(k, v) for k, v in headers
                                                                 if k.lower() != "content-length"])


# --------------------------------------------------------------------------- Grafana

# werkzeug routes WebSocket upgrades only to rules marked websocket=True (else 400 WebsocketMismatch)
@bp.route("/grafana/", defaults={"path": ""}, methods=METHODS)
@bp.route("/grafana/<path:path>", methods=METHODS)
@bp.route("/grafana/<path:path>", methods=["GET"], websocket=True, endpoint="grafana_live")
@require()
def grafana(path: str):
    st = state()
    if not st.settings.grafana_url:
        raise ApiError(404, "grafana_not_configured", "no Grafana is configured (LINGTAN_GRAFANA_URL)")
    role = grafana_role(g.user)
    if role == "None":
        deny("no Grafana role")
    upstream_path = "/grafana/" + safe_path(path)
    qs = request.query_string.decode("latin-1")
    headers = client_headers()
    user = g.user
    headers.update({"X-WEBAUTH-USER": user.username, "X-WEBAUTH-NAME": user.display_name or user.username,
                    "X-WEBAUTH-EMAIL": user.email or f"{user.username}@lingtan.invalid", "X-WEBAUTH-ROLE": role})
    row = g.login_session
    if row is not None and not row.grafana_audited:
        mark_grafana_audited(g.db, row)
        st.ctx.audit(g.db, user=user.username, ip=client_ip(), action="grafana.access", obj=upstream_path,
                     detail={"role": role})
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return _websocket(st.settings.grafana_url, upstream_path + (f"?{qs}" if qs else ""), headers)
    return _forward(st.grafana, upstream_path + (f"?{qs}" if qs else ""), headers, body=request.get_data())


class _Tunnel:
    """A response iterator that pipes bytes between the client and the upstream until either closes.

    The WSGI server must not write a response after a tunnel: the iterator ends by raising EPIPE, which
    gunicorn treats as a client that went away (it closes the connection and writes nothing).
    """

    def __init__(self, client: socket.socket, upstream: socket.socket, first: bytes):
        self.client, self.upstream, self.first = client, upstream, first

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        try:
            self.client.sendall(self.first)
            _pump(self.client, self.upstream)
        finally:
            self.upstream.close()
        raise BrokenPipeError(errno.EPIPE, "websocket tunnel closed")


def _pump(a: socket.socket, b: socket.socket, idle_timeout: float = 3600.0) -> None:
    a.setblocking(True)
    b.setblocking(True)
    sel = selectors.DefaultSelector()
    sel.register(a, selectors.EVENT_READ, b)
    sel.register(b, selectors.EVENT_READ, a)
    try:
        while True:
            ready = [(k.fileobj, k.data) for k, _ in sel.select(idle_timeout)]
            # TLS may hold decrypted bytes that select() cannot see
            for src in (a, b):
                if getattr(src, "pending", lambda: 0)() and all(src is not r for r, _ in ready):
                    ready.append((src, b if src is a else a))
            if not ready:
                return
            for src, dst in ready:
                data = src.recv(64 * 1024)
                if not data:
                    return
                dst.sendall(data)
    except OSError:
        return
    finally:
        sel.close()


def _websocket(base_url: str, path_qs: str, headers: dict[str, str]) -> Response:
    client = request.environ.get("gunicorn.socket")
    if client is None:
        raise ApiError(400, "websocket_unsupported", "WebSocket upgrades need the proxy's own server (gunicorn)")
    parts = urlsplit(base_url)
    host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    upstream = socket.create_connection((host, port), timeout=10)
    if parts.scheme == "https":
        import ssl

        upstream = ssl.create_default_context().wrap_socket(upstream, server_hostname=host)
    lines = [f"GET {path_qs} HTTP/1.1", f"Host: {parts.netloc}", "Connection: Upgrade", "Upgrade: websocket"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    upstream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = upstream.recv(4096)
        if not chunk:
            upstream.close()
            raise ApiError(502, "upstream_closed", "the upstream closed the WebSocket handshake")
        head += chunk
        if len(head) > 65536:
            upstream.close()
            raise ApiError(502, "upstream_bad_handshake", "the upstream's handshake answer is too long")
    if not head.startswith((b"HTTP/1.1 101", b"HTTP/1.0 101")):
        upstream.close()
        status = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
        raise ApiError(502, "upstream_refused_websocket", f"upstream answered {status!r}")
    upstream.settimeout(None)
    # not 101: werkzeug never iterates the body of a 1xx response; the tunnel writes the upstream's
    # own 101 answer itself, and the server writes nothing (see _Tunnel)
    return Response(_Tunnel(client, upstream, head), status=200)


# --------------------------------------------------------------------------- calc-service

@dataclass(frozen=True)
class CalcRule:
    method: str
    path: re.Pattern[str]
    permission: str
    scope: str  # none | entity | park | entities_list | rows
    audit_action: str = ""


CALC_RULES = (
    CalcRule("GET", re.compile(r"api/v1/(health|openapi\.json|factors|factors/history)"), "data.read", "none"),
    CalcRule("GET", re.compile(r"api/v1/entities"), "data.read", "entities_list"),
    CalcRule("GET", re.compile(r"api/v1/(energy|carbon|intensities)"), "data.read", "entity"),
    CalcRule("GET", re.compile(r"api/v1/flows"), "data.read", "park"),
    CalcRule("GET", re.compile(r"api/v1/analysis/(structure|cost|compare|trend|pareto|balance|efficiency|benchmarks)"),
             "data.read", "entity"),
    CalcRule("GET", re.compile(r"api/v1/analysis/limits"), "data.read", "none"),
    CalcRule("GET", re.compile(r"api/v1/meters"), "data.read", "entity"),
    CalcRule("GET", re.compile(r"api/v1/(meters/replacements|quarantine)"), "data.read", "park"),
    CalcRule("POST", re.compile(r"api/v1/meters/replacements(/\d+/withdraw)?"), "data.import", "park",
             "meter.replacement"),
    CalcRule("POST", re.compile(r"api/v1/quarantine/\d+/(confirm|correct)"), "data.import", "park", "data.correct"),
    CalcRule("POST", re.compile(r"api/v1/accounting/evaluate"), "data.read", "none"),
    CalcRule("POST", re.compile(r"api/v1/factors"), "factor.write", "park", "factor.change"),
    CalcRule("POST", re.compile(r"api/v1/recalc"), "calc.recalc", "park", "calc.recalc"),
    CalcRule("GET", re.compile(r"api/v1/recalc(/[A-Za-z0-9_\-]+)?"), "calc.recalc", "park"),
    CalcRule("POST", re.compile(r"api/v1/(production|process|green)(/import)?"), "data.import", "rows", "data.import"),
    # weather is the park's, not an enterprise's: anyone who reads data reads it; importing it is park-wide
    CalcRule("GET", re.compile(r"api/v1/weather"), "data.read", "none"),
    CalcRule("POST", re.compile(r"api/v1/weather(/import)?"), "data.import", "park", "weather.import"),
    CalcRule("GET", re.compile(r"api/v1/forecast(/outturn)?"), "data.read", "entity"),
    # the park's PV and wind output (its own meters, the park's generation plan): park-wide
    CalcRule("GET", re.compile(r"api/v1/forecast/generation"), "data.read", "park"),
    CalcRule("POST", re.compile(r"api/v1/forecast/issue"), "calc.recalc", "park", "forecast.issue"),
    CalcRule("POST", re.compile(r"api/v1/forecast/backtest"), "data.read", "body_entity"),
    # budgets (docs/budget.md): a plan is an entity's; proposals may span enterprises, so they are park-wide;
    # the calc-service refuses an approval by the proposal's own author (four-eyes)
    CalcRule("GET", re.compile(r"api/v1/budgets(/history)?"), "data.read", "entity"),
    CalcRule("POST", re.compile(r"api/v1/budgets"), "budget.edit", "body_entity", "budget.plan"),
    CalcRule("GET", re.compile(r"api/v1/budgets/proposals(/\d+)?"), "data.read", "park"),
    CalcRule("POST", re.compile(r"api/v1/budgets/proposals"), "budget.edit", "park", "budget.propose"),
    CalcRule("POST", re.compile(r"api/v1/budgets/proposals/\d+/(approve|reject)"), "budget.approve", "park",
             "budget.decide"),
    CalcRule("GET", re.compile(r"api/v1/warnings"), "data.read", "entity"),
    CalcRule("POST", re.compile(r"api/v1/warnings/evaluate"), "calc.recalc", "park", "warning.evaluate"),
    CalcRule("GET", re.compile(r"api/v1/recommendations"), "data.read", "entity"),
    CalcRule("GET", re.compile(r"api/v1/recommendations/\d+"), "data.read", "recommendation"),
    CalcRule("POST", re.compile(r"api/v1/recommendations/\d+/(acknowledge|dismiss)"), "recommendation.decide",
             "recommendation", "recommendation.decide"),
    CalcRule("POST", re.compile(r"api/v1/recommendations/evaluate"), "calc.recalc", "park", "recommendation.evaluate"),
    CalcRule("GET", re.compile(r"api/v1/reports(/deliveries)?"), "data.read", "entity"),
    CalcRule("GET", re.compile(r"api/v1/reports/\d+"), "data.read", "report"),
    CalcRule("GET", re.compile(r"api/v1/reports/\d+/file"), "data.export", "report", "report.download"),
    CalcRule("POST", re.compile(r"api/v1/reports"), "data.export", "body_entity", "report.generate"),
)


def stored_entity(what: str, row_id: int) -> str:
    """The entity a stored recommendation or report belongs to (asked of the calc-service; 404 when there is none)."""
    return str(calc_get(f"{what}s/{row_id}", {})["entity"])


def recommendation_entity(row_id: int) -> str:
    return stored_entity("recommendation", row_id)


def _body_entity() -> str:
    """The ``entity`` of a JSON request body (the raw body stays cached for forwarding)."""
    try:
        parsed = json.loads(request.get_data(cache=True) or b"null")
    except ValueError:
        raise ApiError(400, "bad_json", "the request body is not JSON") from None
    return str(parsed.get("entity", PARK)) if isinstance(parsed, dict) else PARK


def _rows_enterprises() -> set[str]:
    """Enterprises named by an import (JSON rows or an uploaded CSV/XLSX); the raw body stays cached."""
    body = request.get_data(cache=True)  # form parsing below reads the cached copy; the original is forwarded
    if request.path.endswith("/import"):
        rows, _name, _payload = uploaded_table()
        return {str(r.get("enterprise", "")) for r in rows}
    try:
        parsed = json.loads(body or b"null")
    except ValueError:
        raise ApiError(400, "bad_json", "the request body is not JSON") from None
    rows = parsed.get("rows") if isinstance(parsed, dict) else None
    if not isinstance(rows, list):
        raise ApiError(400, "bad_json", 'expected {"rows": [{enterprise, ...}]}', "rows")
    return {str(r.get("enterprise", "")) if isinstance(r, dict) else "" for r in rows}


@bp.route("/calc/<path:path>", methods=METHODS)
@require()
def calc(path: str):
    st = state()
    rule = next((r for r in CALC_RULES if r.method == request.method and r.path.fullmatch(path)), None)
    if rule is None:
        raise ApiError(404, "not_found", f"{request.method} /calc/{path} is not a calc-service route")
    if rule.permission not in permissions_of(g.user):
        deny(f"missing permission {rule.permission}")
    scope = enterprise_scope(g.user, set(st.enterprises))
    if rule.scope == "entity":
        entity = request.args.get("entity", PARK)
        if entity not in scope:
            deny(f"entity {entity!r} is outside the caller's data scope")
    elif rule.scope == "park" and PARK not in scope:
        deny("park-wide data and operations need park scope")
    elif rule.scope in ("recommendation", "report"):
        entity = stored_entity(rule.scope, int(path.split("/")[3]))
        if entity not in scope:
            deny(f"{rule.scope} of entity {entity!r} is outside the caller's data scope")
    elif rule.scope == "body_entity":
        entity = _body_entity()
        if entity not in scope:
            deny(f"entity {entity!r} is outside the caller's data scope")
    elif rule.scope == "rows":
        named = _rows_enterprises()
        outside = sorted(named - scope)
        if outside:
            deny(f"rows for enterprise(s) {', '.join(outside)} are outside the caller's data scope")
    headers = {k: v for k, v in client_headers().items() if k.lower() not in ("cookie", "x-csrf-token")}
    headers["X-Lingtan-User"] = g.user.username
    qs = request.query_string.decode("latin-1")
    path_qs = f"/{safe_path(path)}" + (f"?{qs}" if qs else "")
    if rule.scope == "entities_list":
        try:
            up = st.calc.request("GET", path_qs, headers)
            rows = json.loads(up.read())
        except (OSError, ValueError) as exc:
            raise ApiError(502, "upstream_unavailable", f"calc-service: {exc.__class__.__name__}") from None
        return jsonify([r for r in rows if r.get("id") in scope]), up.status
    resp = _forward(st.calc, path_qs, headers, body=request.get_data(cache=True) if request.method != "GET" else None)
    if rule.audit_action:
        st.ctx.audit(g.db, user=g.user.username, ip=client_ip(), action=rule.audit_action, obj=f"/calc/{path}",
                     result="success" if resp.status_code < 400 else "failure",
                     detail={"status": resp.status_code, "query": qs[:300]})
    return resp
