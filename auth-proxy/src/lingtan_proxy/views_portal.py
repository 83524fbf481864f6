"""The portal's overview (live data of the park or the user's enterprise) and the user's profile."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from sqlalchemy import select

from lingtan_proxy import identity, sessions
from lingtan_proxy.api import SOURCE_ROLES, allowed_entities, overview_data
from lingtan_proxy.context import client_ip, state, user_row
from lingtan_proxy.guards import require
from lingtan_proxy.models import Certificate
from lingtan_proxy.rbac import PARK, permissions_of

bp = Blueprint("portal", __name__)


def _entity_choices() -> list[tuple[str, str]]:
    st = state()
    allowed = allowed_entities()
    out = [(PARK, st.park.park.name)] if PARK in allowed else []
    return out + [(e, name) for e, name in st.enterprises.items() if e in allowed]


@bp.get("/")
def root():
    if g.user is None:
        return redirect(url_for("auth.login"))
    return redirect(url_for("portal.overview"))


@bp.get("/favicon.ico")
def favicon():
    """The park icon for clients that ask the conventional address (pages link the SVG themselves)."""
    return send_from_directory(current_app.static_folder, "favicon.svg", mimetype="image/svg+xml", max_age=86400)


@bp.get("/overview")
@require()
def overview():
    choices = _entity_choices()
    data = None
    entity = request.args.get("entity") or (choices[0][0] if choices else None)
    if entity is not None:
        if entity not in dict(choices):
            abort(403)
        data = overview_data(entity) if "data.read" in permissions_of(g.user) else None
    return render_template("overview.html", choices=choices, entity=entity, data=data, source_roles=SOURCE_ROLES)


@bp.route("/profile", methods=["GET", "POST"])
@require()
def profile():
    st = state()
    user = user_row()
    if request.method == "POST":
        locale = request.form.get("locale", "")
        if locale in ("zh", "en"):
            user.locale = locale
            g.db.commit()
            g.locale = locale
    certs = g.db.execute(select(Certificate).where(Certificate.user_id == user.id)
                         .order_by(Certificate.not_before.desc())).scalars().all()
    return render_template("profile.html", user=user, certs=certs,
                           sessions=sessions.active_sessions(g.db, user.id, st.policy.session),
                           has_totp=identity.has_second_factor(user), saved=request.args.get("saved"),
                           client_ip=client_ip())
