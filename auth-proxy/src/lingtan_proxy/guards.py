"""Decorators that let a request through only with a complete login and the permissions named."""

from __future__ import annotations

from functools import wraps

from flask import abort, g, redirect, request, url_for

from lingtan.errors import ApiError
from lingtan_proxy.context import client_ip, state, wants_json
from lingtan_proxy.rbac import permissions_of


def deny(reason: str, status: int = 403):
    """Audit the refusal, then answer 403 (JSON or page)."""
    user = g.user.username if g.get("user") is not None else ""
    state().ctx.audit(g.db, user=user, ip=client_ip(), action="access.denied", obj=f"{request.method} {request.path}",
                      result="denied", detail={"reason": reason})
    if wants_json():
        raise ApiError(status, "forbidden", reason)
    abort(status)


def require(*perms: str, tokens: bool = False):
    """A complete login (or, with ``tokens``, an API token) holding every permission in ``perms``."""

    def decorate(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if g.user is None:
                if wants_json():
                    raise ApiError(401, "unauthenticated", "log in, or send 'Authorization: Bearer <API token>'")
                if g.get("login_session") is not None:
                    return redirect(url_for("auth.login"))
                return redirect(url_for("auth.login", next=request.path))
            if g.token is not None and not tokens:
                raise ApiError(403, "token_not_allowed", "API tokens may only read the data API")
            missing = [p for p in perms if p not in permissions_of(g.user)]
            if missing:
                deny(f"missing permission {', '.join(missing)}")
            return view(*args, **kwargs)

        return wrapped

    return decorate
