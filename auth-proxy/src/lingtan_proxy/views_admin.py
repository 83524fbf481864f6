"""User and role administration (security administrators).

Nobody changes their own roles, scope or status: an administrator cannot raise their own privileges,
and a second administrator sees the change in the audit log.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for
from sqlalchemy import func, select

from lingtan_proxy import identity, sessions
from lingtan_proxy.context import client_ip, state
from lingtan_proxy.guards import deny, require
from lingtan_proxy.identity import IdentityError
from lingtan_proxy.models import Certificate, Role, RolePermission, User, UserRole
from lingtan_proxy.rbac import GRAFANA_ROLES, PERMISSIONS, RoleConflict, check_permission_set

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _all_roles() -> list[Role]:
    return list(g.db.execute(select(Role).order_by(Role.builtin.desc(), Role.name)).scalars())


@bp.get("/users")
@require("user.manage")
def users():
    rows = g.db.execute(select(User).order_by(User.username)).scalars().all()
    locked = {u.username: identity.locked_until(g.db, state().policy, u.username, "", identity.utcnow()) for u in rows}
    return render_template("users.html", users=rows, locked=locked)


@bp.route("/users/new", methods=["GET", "POST"])
@require("user.manage")
def new_user():
    st = state()
    error = password = None
    if request.method == "POST":
        try:
            user, password = identity.create_user(
                g.db, st.ctx, username=request.form.get("username", ""), roles=request.form.getlist("roles"),
                actor=g.user.username, ip=client_ip(), display_name=request.form.get("display_name", "").strip(),
                email=request.form.get("email", "").strip(), enterprises=request.form.getlist("enterprises"),
                park_scope=request.form.get("park_scope") == "on", known_enterprises=set(st.enterprises))
            return render_template("user_created.html", user=user, password=password)
        except (IdentityError, RoleConflict) as exc:
            error = str(exc)
    return render_template("user_edit.html", user=None, roles=_all_roles(), enterprises=st.enterprises,
                           error=error), (400 if error else 200)


def _role_or_404(role_id: int) -> Role:
    role = g.db.get(Role, role_id)
    if role is None:
        abort(404)
    return role


def _user_or_404(user_id: int) -> User:
    user = g.db.get(User, user_id)
    if user is None:
        abort(404)
    return user


def _not_self(user: User) -> None:
    if user.id == g.user.id:
        deny("administrators cannot change their own account here (roles, scope, status, factors)")


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@require("user.manage")
def edit_user(user_id: int):
    st = state()
    user = _user_or_404(user_id)
    error = None
    if request.method == "POST":
        _not_self(user)
        try:
            identity.update_user(g.db, st.ctx, user, actor=g.user.username, ip=client_ip(),
                                 roles=request.form.getlist("roles"), enterprises=request.form.getlist("enterprises"),
                                 park_scope=request.form.get("park_scope") == "on",
                                 disabled=request.form.get("disabled") == "on",
                                 display_name=request.form.get("display_name", "").strip(),
                                 email=request.form.get("email", "").strip(), known_enterprises=set(st.enterprises))
            if user.disabled:
                sessions.revoke_all(g.db, user.id)
            return redirect(url_for("admin.users"))
        except (IdentityError, RoleConflict) as exc:
            g.db.rollback()
            error = str(exc)
    certs = g.db.execute(select(Certificate).where(Certificate.user_id == user.id)).scalars().all()
    return render_template("user_edit.html", user=user, roles=_all_roles(), enterprises=st.enterprises, error=error,
                           certs=certs), (400 if error else 200)


@bp.post("/users/<int:user_id>/unlock")
@require("user.manage")
def unlock(user_id: int):
    user = _user_or_404(user_id)
    identity.clear_failures(g.db, user.username)
    state().ctx.audit(g.db, user=g.user.username, ip=client_ip(), action="user.unlock", obj=user.username)
    return redirect(url_for("admin.users"))


@bp.post("/users/<int:user_id>/reset-password")
@require("user.manage")
def reset_password(user_id: int):
    user = _user_or_404(user_id)
    _not_self(user)
    password = identity.reset_password(g.db, state().ctx, user, actor=g.user.username, ip=client_ip())
    return render_template("user_created.html", user=user, password=password)


@bp.post("/users/<int:user_id>/reset-mfa")
@require("user.manage")
def reset_mfa(user_id: int):
    user = _user_or_404(user_id)
    _not_self(user)
    identity.remove_totp(g.db, state().ctx, user, actor=g.user.username, ip=client_ip())
    sessions.revoke_all(g.db, user.id)
    return redirect(url_for("admin.edit_user", user_id=user.id))


@bp.post("/users/<int:user_id>/certificate")
@require("cert.manage")
def issue_certificate(user_id: int):
    """Issue a client certificate; its bundle can be downloaded once, its password is shown once."""
    import base64

    from lingtan_proxy.certs import issue_for_user

    st = state()
    user = _user_or_404(user_id)
    issued = issue_for_user(g.db, st.ca, user)
    row = g.db.get(Certificate, issued.serial_hex)
    row.bundle_sealed = st.ctx.box.seal(base64.b64encode(issued.p12).decode())
    g.db.commit()
    st.ctx.audit(g.db, user=g.user.username, ip=client_ip(), action="mfa.cert.issue", obj=user.username,
                 detail={"serial": issued.serial_hex, "not_after": issued.not_after.isoformat()})
    return render_template("cert_issued.html", user=user, issued=issued)


@bp.get("/certificates/<serial>/bundle.p12")
@require("cert.manage")
def download_bundle(serial: str):
    """The PKCS#12 bundle, once: it is deleted from the database as it is handed out."""
    import base64

    row = g.db.get(Certificate, serial)
    if row is None or row.bundle_sealed is None:
        abort(404)
    p12 = base64.b64decode(state().ctx.box.open(row.bundle_sealed))
    row.bundle_sealed = None
    g.db.commit()
    user = g.db.get(User, row.user_id)
    return Response(p12, mimetype="application/x-pkcs12",
                    headers={"Content-Disposition": f'attachment; filename="{user.username}-{serial[:8]}.p12"'})


@bp.post("/certificates/<serial>/revoke")
@require("cert.manage")
def revoke_certificate(serial: str):
    from lingtan_proxy.certs import revoke_certificate as revoke

    try:
        row = revoke(g.db, state().ca, serial, request.form.get("reason", "unspecified"))
    except LookupError:
        abort(404)
    state().ctx.audit(g.db, user=g.user.username, ip=client_ip(), action="mfa.cert.revoke", obj=serial,
                      detail={"user_id": row.user_id})
    return redirect(url_for("admin.edit_user", user_id=row.user_id))


# --------------------------------------------------------------------------- roles

@bp.get("/roles")
@require("role.manage")
def roles():
    counts = dict(g.db.execute(select(UserRole.role_id, func.count()).group_by(UserRole.role_id)).all())
    return render_template("roles.html", roles=_all_roles(), counts=counts, permissions=PERMISSIONS)


def _role_from_form(role: Role) -> dict:
    perms = set(request.form.getlist("permissions"))
    check_permission_set(perms, f"role {role.name or request.form.get('name', '')}")
    grafana = request.form.get("grafana_role", "None")
    if grafana not in GRAFANA_ROLES:
        raise RoleConflict(f"grafana_role {grafana!r} is not one of {', '.join(GRAFANA_ROLES)}")
    before = {"permissions": sorted(role.permission_names), "mfa_required": role.mfa_required,
              "certificate_required": role.certificate_required,
              "enterprise_only": role.enterprise_only, "grafana_role": role.grafana_role}
    role.title_zh = request.form.get("title_zh", "").strip()[:128]
    role.title_en = request.form.get("title_en", "").strip()[:128]
    role.mfa_required = request.form.get("mfa_required") == "on"
    role.certificate_required = request.form.get("certificate_required") == "on"
    role.enterprise_only = request.form.get("enterprise_only") == "on"
    role.grafana_role = grafana
    role.permissions = [RolePermission(permission=p) for p in sorted(perms)]
    after = {"permissions": sorted(perms), "mfa_required": role.mfa_required,
             "certificate_required": role.certificate_required,
             "enterprise_only": role.enterprise_only, "grafana_role": grafana}
    return {k: [before[k], after[k]] for k in after if before[k] != after[k]}


def _check_members(role: Role) -> None:
    """A changed role must not give any of its members audit and control permissions together."""
    from lingtan_proxy.rbac import check_user_roles

    members = g.db.execute(select(User).join(UserRole).where(UserRole.role_id == role.id)).scalars().all()
    for m in members:
        check_user_roles([r if r.id != role.id else role for r in m.roles])


@bp.route("/roles/new", methods=["GET", "POST"])
@require("role.manage")
def new_role():
    error = None
    if request.method == "POST":
        name = request.form.get("name", "").strip().lower()
        try:
            if not name or not all(c.isalnum() or c in "_-" for c in name) or len(name) > 64:
                raise RoleConflict(f"role name {name!r}: 1-64 characters a-z 0-9 _ -")
            if g.db.execute(select(Role).where(Role.name == name)).scalar_one_or_none() is not None:
                raise RoleConflict(f"role name {name!r} is already taken")
            role = Role(name=name, builtin=False)
            changes = _role_from_form(role)
            g.db.add(role)
            g.db.commit()
            state().ctx.audit(g.db, user=g.user.username, ip=client_ip(), action="role.create", obj=name,
                              detail=changes)
            return redirect(url_for("admin.roles"))
        except RoleConflict as exc:
            g.db.rollback()
            error = str(exc)
    return render_template("role_edit.html", role=None, permissions=PERMISSIONS, grafana_roles=GRAFANA_ROLES,
                           error=error), (400 if error else 200)


@bp.route("/roles/<int:role_id>", methods=["GET", "POST"])
@require("role.manage")
def edit_role(role_id: int):
    role = _role_or_404(role_id)
    error = None
    if request.method == "POST":
        if role.builtin:
            deny(f"built-in role {role.name} cannot be changed")
        if role.id in {r.id for r in g.user.roles}:
            deny("administrators cannot change a role they hold")
        try:
            changes = _role_from_form(role)
            _check_members(role)
            g.db.commit()
            state().ctx.audit(g.db, user=g.user.username, ip=client_ip(), action="role.update", obj=role.name,
                              detail=changes)
            return redirect(url_for("admin.roles"))
        except RoleConflict as exc:
            g.db.rollback()
            error = str(exc)
    return render_template("role_edit.html", role=role, permissions=PERMISSIONS, grafana_roles=GRAFANA_ROLES,
                           error=error), (400 if error else 200)


@bp.post("/roles/<int:role_id>/delete")
@require("role.manage")
def delete_role(role_id: int):
    role = _role_or_404(role_id)
    if role.builtin:
        deny(f"built-in role {role.name} cannot be deleted")
    name = role.name
    g.db.delete(role)
    g.db.commit()
    state().ctx.audit(g.db, user=g.user.username, ip=client_ip(), action="role.delete", obj=name)
    return redirect(url_for("admin.roles"))
