"""Roles, permissions and data scope.

Permissions are fixed strings; roles are sets of them. The built-in roles follow GB/T 22239-2019
8.1.4.2 d (least privilege, separated administrators) and 8.1.10 (system, security and audit
administrators): the system admin runs the platform, the security admin manages users and roles, the
audit admin reads and archives the audit log. No role, and no user, may hold both an audit permission
and a permission to change users, roles or configuration: nobody can act and erase the trace.

Data scope: a user with ``park_scope`` sees the park and every enterprise, unless one of their roles is
``enterprise_only``; everyone else sees only the enterprises assigned to them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from lingtan_proxy.models import AuthEpoch, Role, RolePermission, User

PARK = "park"

PERMISSIONS: dict[str, tuple[str, str]] = {
    # permission: (中文, English)
    "data.read": ("查看能耗与碳排放数据", "Read energy and carbon data"),
    "data.export": ("导出数据", "Export data"),
    "data.import": ("导入生产与活动数据", "Import production and activity data"),
    "calc.recalc": ("触发重新核算", "Trigger recalculation"),
    "factor.write": ("修改排放因子", "Change emission factors"),
    "recommendation.decide": ("处理节能建议（确认或驳回）", "Acknowledge or dismiss recommendations"),
    "budget.edit": ("编制预算与提出调整", "Set budgets and propose changes"),
    "budget.approve": ("审批预算调整（不能审批本人提出的）", "Approve budget changes (not one's own)"),
    "grafana.view": ("查看看板", "View dashboards"),
    "grafana.edit": ("编辑看板", "Edit dashboards"),
    "grafana.admin": ("管理看板系统", "Administer Grafana"),
    "system.config": ("系统配置", "System configuration"),
    "user.manage": ("用户管理", "Manage users"),
    "role.manage": ("角色管理", "Manage roles"),
    "token.own": ("管理本人API令牌", "Manage own API tokens"),
    "token.manage": ("管理全部API令牌", "Manage all API tokens"),
    "cert.manage": ("签发与吊销证书", "Issue and revoke certificates"),
    "audit.read": ("查看审计日志", "Read the audit log"),
    "audit.export": ("导出审计日志", "Export the audit log"),
    "audit.archive": ("归档审计日志", "Archive the audit log"),
}
AUDIT_PERMISSIONS = frozenset({"audit.read", "audit.export", "audit.archive"})
# permissions that change who may do what, or the platform itself
CONTROL_PERMISSIONS = frozenset({"user.manage", "role.manage", "system.config", "cert.manage", "token.manage"})
ADMIN_PERMISSIONS = AUDIT_PERMISSIONS | CONTROL_PERMISSIONS | {"grafana.admin"}


@dataclass(frozen=True)
class BuiltinRole:
    name: str
    title_zh: str
    title_en: str
    permissions: frozenset[str]
    grafana_role: str = "Viewer"
    mfa_required: bool = False
    enterprise_only: bool = False


BUILTIN_ROLES: tuple[BuiltinRole, ...] = (
    BuiltinRole("system_admin", "系统管理员", "System administrator",
                frozenset({"system.config", "grafana.admin", "grafana.edit", "grafana.view", "data.read",
                           "calc.recalc", "factor.write", "token.own"}), "Admin", True),
    BuiltinRole("security_admin", "安全管理员", "Security administrator",
                frozenset({"user.manage", "role.manage", "token.manage", "cert.manage"}), "None", True),
    BuiltinRole("audit_admin", "审计管理员", "Audit administrator",
                AUDIT_PERMISSIONS, "None", True),
    BuiltinRole("energy_manager", "园区能源管理员", "Park energy manager",
                frozenset({"data.read", "data.export", "data.import", "calc.recalc", "factor.write",
                           "recommendation.decide", "budget.edit", "budget.approve", "grafana.view", "grafana.edit",
                           "token.own"}), "Editor", True),
    BuiltinRole("operator", "运行值班员", "Operator", frozenset({"data.read", "grafana.view"}), "Viewer"),
    BuiltinRole("analyst", "数据分析员", "Analyst",
                frozenset({"data.read", "data.export", "grafana.view", "token.own"}), "Viewer"),
    BuiltinRole("enterprise_user", "企业用户", "Enterprise user",
                frozenset({"data.read", "data.export", "data.import", "recommendation.decide"}), "None",
                enterprise_only=True),
    BuiltinRole("api_client", "第三方接口用户", "Third-party API client",
                frozenset({"data.read", "token.own"}), "None"),
)
GRAFANA_ROLES = ("None", "Viewer", "Editor", "Admin")


class RoleConflict(ValueError):
    """A role or a user would combine audit with control permissions, or names an unknown permission."""


def check_permission_set(perms: set[str], what: str) -> None:
    unknown = sorted(perms - PERMISSIONS.keys())
    if unknown:
        raise RoleConflict(f"{what}: unknown permission(s) {', '.join(unknown)}")
    if perms & AUDIT_PERMISSIONS and perms & CONTROL_PERMISSIONS:
        raise RoleConflict(f"{what}: audit permissions ({', '.join(sorted(perms & AUDIT_PERMISSIONS))}) cannot be "
                           f"combined with {', '.join(sorted(perms & CONTROL_PERMISSIONS))} (separation of duties)")


def ensure_builtin_roles(session: Session) -> None:
    """Create or refresh the built-in roles (their permissions are not editable), and the epoch row."""
    if session.get(AuthEpoch, 1) is None:
        session.add(AuthEpoch(id=1, value=0))
        session.commit()
    existing = {r.name: r for r in session.execute(select(Role)).scalars()}
    for b in BUILTIN_ROLES:
        check_permission_set(set(b.permissions), f"built-in role {b.name}")
        role = existing.get(b.name) or Role(name=b.name)
        role.title_zh, role.title_en, role.builtin = b.title_zh, b.title_en, True
        role.grafana_role, role.mfa_required, role.enterprise_only = b.grafana_role, b.mfa_required, b.enterprise_only
        if role.permission_names != set(b.permissions):
            role.permissions = [RolePermission(permission=p) for p in sorted(b.permissions)]
        session.add(role)
    session.commit()


def permissions_of(user: User) -> set[str]:
    return set().union(*(r.permission_names for r in user.roles)) if user.roles else set()


def is_admin(user: User) -> bool:
    return bool(permissions_of(user) & ADMIN_PERMISSIONS)


def mfa_required(user: User) -> bool:
    """Admins always need two factors; otherwise any role of the user may ask for it."""
    return is_admin(user) or any(r.mfa_required or r.certificate_required for r in user.roles)


def certificate_required(user: User) -> bool:
    """Whether the second factor must be a client certificate (a role of the user says so)."""
    return any(r.certificate_required for r in user.roles)


def has_park_scope(user: User) -> bool:
    return user.park_scope and not any(r.enterprise_only for r in user.roles)


def enterprise_scope(user: User, all_enterprises: set[str]) -> set[str]:
    """The enterprise ids ``user`` may see (``park`` included when they see the park totals)."""
    if has_park_scope(user):
        return set(all_enterprises) | {PARK}
    return {e.enterprise for e in user.enterprises} & set(all_enterprises)


def grafana_role(user: User) -> str:
    """The highest Grafana role of the user's roles ("None" when Grafana is not theirs)."""
    perms = permissions_of(user)
    best = max((GRAFANA_ROLES.index(r.grafana_role) for r in user.roles if r.grafana_role in GRAFANA_ROLES),
               default=0)
    if "grafana.view" not in perms and "grafana.admin" not in perms:
        return "None"
    return GRAFANA_ROLES[best]


def check_user_roles(roles: list[Role]) -> None:
    """Refuse a combination of roles that would give one user both audit and control permissions."""
    perms = set().union(*(r.permission_names for r in roles)) if roles else set()
    if perms & AUDIT_PERMISSIONS and perms & CONTROL_PERMISSIONS:
        names = ", ".join(sorted(r.name for r in roles))
        raise RoleConflict(f"roles {names}: one user cannot hold both audit and user/role/system administration "
                           "permissions (separation of duties)")
