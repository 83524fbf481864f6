"""Identity rules without HTTP: password policy and history, lockout, TOTP replay, recovery codes, RBAC."""

from __future__ import annotations

import time
from datetime import timedelta

import pyotp
import pytest

from lingtan.db import make_engine, session_factory
from lingtan_proxy import audit, identity
from lingtan_proxy.crypto import SecretBox
from lingtan_proxy.models import LoginFailure, Role
from lingtan_proxy.passwords import character_classes, policy_problems
from lingtan_proxy.policy import PasswordPolicy, PolicyError, SecurityPolicy, load_policy
from lingtan_proxy.rbac import (
    RoleConflict,
    check_permission_set,
    ensure_builtin_roles,
    enterprise_scope,
    mfa_required,
)

KEY = b"a" * 32


@pytest.fixture
def env(tmp_path):
    db = session_factory(make_engine(f"sqlite:///{tmp_path / 'i.db'}"))
    ctx = identity.ProxyContext(policy=SecurityPolicy(), audit_key=KEY, box=SecretBox(b"m" * 32))
    with db() as s:
        audit.ensure_head(s, KEY)
        ensure_builtin_roles(s)
    return db, ctx


def new_user(s, ctx, name="alice", roles=("operator",), **kw):
    user, otp = identity.create_user(s, ctx, username=name, roles=list(roles), actor="t", ip="t", **kw)
    return user, otp


def test_password_policy():
    p = PasswordPolicy()
    assert policy_problems("Short1!", p) == ["pw_too_short"]
    assert policy_problems("alllowercase1", p) == ["pw_classes"]
    assert policy_problems("Abcdefg1", p) == []
    assert policy_problems("Alice-2026x", p, username="alice") == ["pw_contains_user"]
    assert character_classes("aA1-") == 4 and character_classes("中文密码abc") == 2
    assert identity.one_time_password() != identity.one_time_password()
    assert policy_problems(identity.one_time_password(), PasswordPolicy(min_length=16, min_classes=4)) == []


def test_policy_file_errors_name_file_field_and_value(tmp_path):
    f = tmp_path / "security.yaml"
    f.write_text("password:\n  min_length: 6\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"security.yaml: password.min_length = 6"):
        load_policy(f)
    f.write_text("audit: {retention_days: 90}\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="audit.retention_days = 90"):
        load_policy(f)
    f.write_text("lockout: {max_failures: 3, ban_s: 60}\n", encoding="utf-8")
    assert load_policy(f).lockout.max_failures == 3


def test_first_password_must_change_and_history_is_kept(env):
    db, ctx = env
    with db() as s:
        user, otp = new_user(s, ctx)
        assert user.must_change_password
        assert identity.change_password(s, ctx, user, "wrong", "New-Password-1", ip="t") == ["pw_wrong_current"]
        assert identity.change_password(s, ctx, user, otp, otp, ip="t") == ["pw_reused"]
        assert identity.change_password(s, ctx, user, otp, "New-Password-1", ip="t") == []
        assert not user.must_change_password
        assert identity.change_password(s, ctx, user, "New-Password-1", "Newer-Password-2", ip="t") == []
        # both earlier passwords are in the history
        assert identity.change_password(s, ctx, user, "Newer-Password-2", "New-Password-1", ip="t") == ["pw_reused"]
        assert user.password_hash.startswith("$argon2id$")


def test_lockout_same_for_known_and_unknown_names(env):
    db, ctx = env
    with db() as s:
        _user, otp = new_user(s, ctx)
        for name in ("alice", "nobody"):
            outcomes = [identity.check_password(s, ctx, name, "bad", "1.2.3.4").result for _ in range(5)]
            assert outcomes == ["bad"] * 5
            assert identity.check_password(s, ctx, name, otp, "1.2.3.4").result == "locked"
        # the right password is refused while locked, and the lockout is audited
        assert identity.check_password(s, ctx, "alice", otp, "5.6.7.8").user is None
        stats = audit.statistics(s, audit.AuditFilter(action="login.locked"))
        assert {r["username"] for r in stats["by_user"]} == {"alice", "nobody"}


def test_lock_ends_after_ban(env):
    db, ctx = env
    now = audit.utcnow()
    with db() as s:
        for i in range(5):
            s.add(LoginFailure(time=now - timedelta(seconds=2000 - i), username="bob", ip="9.9.9.9"))
        s.commit()
        assert identity.locked_until(s, ctx.policy, "bob", "x", now) is None  # ban (900 s) over
        assert identity.locked_until(s, ctx.policy, "bob", "x", now - timedelta(seconds=1500)) is not None


def test_ip_lockout_stops_spraying(env):
    db, ctx = env
    with db() as s:
        for i in range(20):
            identity.check_password(s, ctx, f"user{i}", "guess", "6.6.6.6")
        assert identity.check_password(s, ctx, "user99", "guess", "6.6.6.6").result == "locked"


def test_totp_replay_and_skew(env):
    db, ctx = env
    with db() as s:
        user, _ = new_user(s, ctx)
        uri = identity.begin_totp(s, ctx, user)
        assert uri.startswith("otpauth://totp/Lingtan:alice?secret=")
        secret = identity.totp_secret(ctx, user)
        totp = pyotp.TOTP(secret)
        now = time.time()
        assert identity.confirm_totp(s, ctx, user, "000000" if totp.at(now) != "000000" else "111111", ip="t",
                                     now=now) == []
        codes = identity.confirm_totp(s, ctx, user, totp.at(now - 30), ip="t", now=now)
        assert len(codes) == 10
        assert identity.check_totp(s, ctx, user, totp.at(now), ip="t", now=now)
        assert not identity.check_totp(s, ctx, user, totp.at(now), ip="t", now=now), "replayed code accepted"
        assert not identity.check_totp(s, ctx, user, totp.at(now - 30), ip="t", now=now), "older code accepted"
        assert identity.check_totp(s, ctx, user, totp.at(now + 30), ip="t", now=now)  # one step of clock skew
        assert not identity.check_totp(s, ctx, user, totp.at(now + 120), ip="t", now=now + 30)
        # recovery codes work once each
        assert identity.use_recovery_code(s, ctx, user, codes[0], ip="t")
        assert not identity.use_recovery_code(s, ctx, user, codes[0], ip="t")
        assert identity.use_recovery_code(s, ctx, user, codes[1].upper(), ip="t")
        # the seed is stored encrypted
        assert secret not in user.totp.secret_encrypted


def test_separation_of_duties(env):
    db, ctx = env
    with pytest.raises(RoleConflict, match="separation of duties"):
        check_permission_set({"audit.read", "user.manage"}, "role x")
    with pytest.raises(RoleConflict, match="unknown permission"):
        check_permission_set({"everything"}, "role y")
    with db() as s:
        with pytest.raises(RoleConflict, match="separation of duties"):
            new_user(s, ctx, "eve", roles=("audit_admin", "security_admin"))
        with pytest.raises(RoleConflict):
            new_user(s, ctx, "eve", roles=("audit_admin", "system_admin"))
        user, _ = new_user(s, ctx, "auditor", roles=("audit_admin",))
        assert mfa_required(user)
        with pytest.raises(identity.IdentityError, match="unknown role"):
            new_user(s, ctx, "x1", roles=("root",))
        with pytest.raises(identity.IdentityError, match="already taken"):
            new_user(s, ctx, "AUDITOR", roles=("operator",))
        assert {r.name for r in s.query(Role).filter(Role.builtin)} >= {"system_admin", "security_admin",
                                                                          "audit_admin", "energy_manager", "operator",
                                                                          "analyst", "enterprise_user", "api_client"}


def test_enterprise_scope(env):
    db, ctx = env
    with db() as s:
        manager, _ = new_user(s, ctx, "mgr", roles=("energy_manager",), park_scope=True)
        assert enterprise_scope(manager, {"A", "B"}) == {"A", "B", "park"}
        ent, _ = new_user(s, ctx, "ent", roles=("enterprise_user",), enterprises=["A"], park_scope=True)
        assert enterprise_scope(ent, {"A", "B"}) == {"A"}  # enterprise_only wins over park_scope
        with pytest.raises(identity.IdentityError, match="unknown enterprise"):
            new_user(s, ctx, "ghost", roles=("operator",), enterprises=["Z"], known_enterprises={"A", "B"})
