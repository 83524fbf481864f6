"""Typed configuration of the notification bridge, validated at start-up from ``notify.yaml``.

Secrets never sit in the file: each is named by an environment variable (``token_env``,
``password_env``, ``secret_env``, ``url_env``) and read once when the file is loaded. A bad value
stops the start with a message naming the file, the field and the value, e.g.
``notify.yaml: retry.max_attempts = 0: Input should be greater than or equal to 1``.

:func:`serve_settings` reads the service's own environment variables (``LINGTAN_NOTIFY_*``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError, PydanticUseDefault
from pydantic_settings import BaseSettings, SettingsConfigDict

from lingtan.settings import load_settings
from lingtan_notify.templates import Renderer, TemplateConfigError

Channel = Literal["sms", "email", "dingtalk", "wecom"]
Locale = Literal["zh", "en"]
CHANNELS: tuple[str, ...] = ("sms", "email", "dingtalk", "wecom")
ALL = "*"
_PHONE = re.compile(r"^\+?[0-9]{5,15}$")
_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8095
ENV_PREFIX = "LINGTAN_NOTIFY_"


class ConfigError(ValueError):
    """notify.yaml is unreadable, a value is invalid or a named secret is unset; names file, field and value."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _env_name(v: str | None) -> str | None:
    if v is not None and not _ENV_NAME.match(v):
        raise ValueError("is not an environment variable name")
    return v


def _http_url(v: str | None) -> str | None:
    if v is not None and not v.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return v


# --------------------------------------------------------------------------- providers


class SmsAuth(_Strict):
    """The credential sent in one request header: ``<header>: <scheme> <token>`` (no scheme: the bare token)."""

    header: str = "Authorization"
    scheme: str = "Bearer"
    token_env: str
    _check_env = field_validator("token_env")(_env_name)


class SmsSuccess(_Strict):
    """A send succeeded when the status is 2xx and, if ``json_field`` is set, that field equals ``equals``."""

    json_field: str | None = None  # dotted path into the JSON answer, e.g. "Code" or "result.code"
    equals: Any = None


class SmsProvider(_Strict):
    """A generic SMS-provider HTTP API: one request per phone number, the body built from templates."""

    url: str
    method: Literal["POST", "PUT", "GET"] = "POST"
    encoding: Literal["json", "form", "query"] = "json"  # where ``body`` goes
    auth: SmsAuth | None = None
    headers: dict[str, str] = {}
    # field -> Jinja2 template (or nested dict/list of them) over phone, text, sign, subject, alertname,
    # severity, severity_name, enterprise, enterprise_name, summary, alert_status, fingerprint
    body: dict[str, Any] = {"phone": "{{ phone }}", "text": "{{ text }}", "sign": "{{ sign }}"}
    sign: str = ""  # the approved SMS signature (签名), without 【】
    success: SmsSuccess = SmsSuccess()
    timeout_s: float = Field(10.0, gt=0, le=120)
    _check_url = field_validator("url")(_http_url)


class SmtpProvider(_Strict):
    host: str
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    from_addr: str
    from_name: str = "零碳平台告警"
    timeout_s: float = Field(15.0, gt=0, le=120)
    _check_env = field_validator("password_env")(_env_name)

    @field_validator("from_addr")
    @classmethod
    def _addr(cls, v: str) -> str:
        if not _EMAIL.match(v):
            raise ValueError("is not an e-mail address")
        return v

    @model_validator(mode="after")
    def _login(self) -> SmtpProvider:
        if self.password_env and not self.username:
            raise ValueError("password_env is set but username is not")
        return self


class RobotProvider(_Strict):
    """A DingTalk or WeCom group robot: its webhook URL (contains the access token: prefer ``url_env``)."""

    url: str | None = None
    url_env: str | None = None
    secret_env: str | None = None  # DingTalk "加签" secret (SEC...); WeCom robots have none
    timeout_s: float = Field(10.0, gt=0, le=120)
    _check_url = field_validator("url")(_http_url)
    _check_env = field_validator("url_env", "secret_env")(_env_name)

    @model_validator(mode="after")
    def _one_url(self) -> RobotProvider:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("set exactly one of url and url_env")
        return self


class Providers(_Strict):
    sms: SmsProvider | None = None
    smtp: SmtpProvider | None = None
    dingtalk: RobotProvider | None = None
    wecom: RobotProvider | None = None

    def configured(self) -> set[str]:
        """The channels that have a provider."""
        have = {"sms": self.sms, "email": self.smtp, "dingtalk": self.dingtalk, "wecom": self.wecom}
        return {ch for ch, p in have.items() if p is not None}


# --------------------------------------------------------------------------- recipients, templates, retry


class RecipientGroup(_Strict):
    """People (and robots) to tell about the alerts of some severities."""

    name: str = Field(min_length=1)
    phones: list[str] = []
    emails: list[str] = []
    severities: list[str] = [ALL]  # e.g. [critical]; "*" = every severity
    channels: list[Channel] = ["sms", "email"]
    locale: Locale | None = None  # None: the top-level locale
    resolved: bool = True  # also tell them when the alert resolves
    copy_all: bool = False  # default groups only: also get alerts of enterprises that have their own groups
    # the scheduled reports (日报/月报/年报) this group's e-mail addresses receive, with the files attached
    reports: list[Literal["day", "month", "year"]] = []

    @field_validator("phones")
    @classmethod
    def _phones(cls, v: list[str]) -> list[str]:
        v = [p.replace(" ", "").replace("-", "") for p in v]
        if bad := [p for p in v if not _PHONE.match(p)]:
            raise ValueError(f"not phone numbers: {', '.join(bad)}")
        return v

    @field_validator("emails")
    @classmethod
    def _emails(cls, v: list[str]) -> list[str]:
        if bad := [e for e in v if not _EMAIL.match(e)]:
            raise ValueError(f"not e-mail addresses: {', '.join(bad)}")
        return v

    @field_validator("severities")
    @classmethod
    def _severities(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("list at least one severity, or '*'")
        return [s.strip().lower() for s in v]

    def wants(self, severity: str, status: str) -> bool:
        """True if this group is told about an alert of ``severity`` in ``status`` (firing or resolved)."""
        return (ALL in self.severities or severity in self.severities) and (status != "resolved" or self.resolved)


class Recipients(_Strict):
    default: list[RecipientGroup] = []  # alerts with no enterprise, or one without groups of its own
    enterprises: dict[str, list[RecipientGroup]] = {}  # enterprise id (the alert's label) -> groups


class TemplateSet(_Strict):
    """Jinja2 templates of one locale; any left out uses the built-in one (lingtan_notify.templates)."""

    sms: str | None = None
    email_subject: str | None = None
    email_body: str | None = None
    robot: str | None = None  # DingTalk/WeCom markdown; the title is email_subject


class Retry(_Strict):
    max_attempts: int = Field(8, ge=1, le=100)
    backoff_base_s: float = Field(30.0, gt=0)  # delay after attempt n: base * 2**(n-1), capped at max
    backoff_max_s: float = Field(3600.0, gt=0)
    jitter: float = Field(0.1, ge=0, le=1)  # delays are stretched by up to this fraction at random
    poll_interval_s: float = Field(1.0, gt=0, le=60)  # how often the worker looks for due deliveries
    lease_s: float = Field(120.0, gt=0)  # a delivery claimed by a worker that then died is retried after this
    concurrency: int = Field(4, ge=1, le=64)


class Webhook(_Strict):
    """Grafana's webhook contact point sends ``Authorization: Bearer <token>``; anything else gets 401."""

    token_env: str = "LINGTAN_NOTIFY_TOKEN"
    _check_env = field_validator("token_env")(_env_name)


class NotifyConfig(_Strict):
    """The whole ``notify.yaml``."""

    locale: Locale = "zh"
    timezone: str = "Asia/Shanghai"  # times in messages
    enterprise_label: str = "enterprise"
    severity_label: str = "severity"
    default_severity: str = "warning"  # of alerts without the severity label
    enterprise_names: dict[str, str] = {}  # id -> display name, e.g. e01: 华东精细化工有限公司
    severity_names: dict[str, dict[str, str]] = {}  # locale -> severity -> name; adds to the built-in ones
    sms_max_chars: int = Field(300, ge=20, le=2000)  # longer texts are cut with "…"
    webhook: Webhook = Webhook()
    providers: Providers = Providers()
    recipients: Recipients = Recipients()
    templates: dict[Locale, TemplateSet] = {}
    retry: Retry = Retry()
    _secrets: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not an IANA time zone such as Asia/Shanghai") from None
        return v

    @field_validator("enterprise_label", "severity_label")
    @classmethod
    def _label(cls, v: str) -> str:
        if not _LABEL.match(v):
            raise ValueError("is not a Prometheus/Grafana label name")
        return v

    @field_validator("default_severity")
    @classmethod
    def _sev(cls, v: str) -> str:
        return v.strip().lower()

    def groups(self) -> list[tuple[str, RecipientGroup]]:
        """Every group with its place in the file, e.g. ``("enterprises.e01.0", group)``."""
        out = [(f"default.{i}", g) for i, g in enumerate(self.recipients.default)]
        for ent, groups in self.recipients.enterprises.items():
            out += [(f"enterprises.{ent}.{i}", g) for i, g in enumerate(groups)]
        return out

    def route(self, enterprise: str | None, severity: str, status: str) -> list[RecipientGroup]:
        """The groups told about an alert: the enterprise's own groups plus the default groups that copy all,
        or the default groups when the enterprise has none (or the alert names no enterprise)."""
        own = self.recipients.enterprises.get(enterprise or "", [])
        chosen = own + [g for g in self.recipients.default if g.copy_all] if own else list(self.recipients.default)
        return [g for g in chosen if g.wants(severity, status)]

    def report_route(self, entity: str, kind: str) -> list[RecipientGroup]:
        """The groups that receive a report of ``entity`` ("park" or an enterprise id) of ``kind``: routed as
        an alert of that enterprise is (the park's report: the default groups)."""
        own = self.recipients.enterprises.get(entity, []) if entity != "park" else []
        chosen = own + [g for g in self.recipients.default if g.copy_all] if own else list(self.recipients.default)
        return [g for g in chosen if kind in g.reports]

    def secret(self, env_name: str | None) -> str | None:
        """The value of a secret named in the file (read from the environment at load time)."""
        return self._secrets.get(env_name) if env_name else None

    def with_secrets(self, secrets: Mapping[str, str]) -> NotifyConfig:
        """This config with its secrets set (``parse_config`` reads them from the environment)."""
        self._secrets = dict(secrets)
        return self

    def secret_fields(self) -> list[tuple[str, str]]:
        """(field path, environment variable name) of every secret the file names; all must be set."""
        p = self.providers
        out = [("webhook.token_env", self.webhook.token_env)]
        if p.sms and p.sms.auth:
            out.append(("providers.sms.auth.token_env", p.sms.auth.token_env))
        if p.smtp and p.smtp.password_env:
            out.append(("providers.smtp.password_env", p.smtp.password_env))
        for name, robot in (("dingtalk", p.dingtalk), ("wecom", p.wecom)):
            if robot and robot.url_env:
                out.append((f"providers.{name}.url_env", robot.url_env))
            if robot and robot.secret_env:
                out.append((f"providers.{name}.secret_env", robot.secret_env))
        return out


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top level)'} = {e.get('input')!r}: {e['msg']}"
                     for e in exc.errors(include_url=False))


def parse_config(raw: Any, source: str = "notify.yaml", environ: Mapping[str, str] | None = None) -> NotifyConfig:
    """Validate a parsed YAML document, read its secrets from ``environ`` and compile its templates."""
    env = os.environ if environ is None else environ
    if raw is None:
        raw = {}
    try:
        cfg = NotifyConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_problems(exc)}") from None
    secrets: dict[str, str] = {}
    for field, name in cfg.secret_fields():
        value = env.get(name, "")
        if not value:
            raise ConfigError(f"{source}: {field} = {name!r}: environment variable {name} is not set or empty")
        if field == "webhook.token_env" and len(value) < 16:
            raise ConfigError(f"{source}: {field} = {name!r}: the token in {name} is shorter than 16 characters")
        secrets[name] = value
    for field, name in cfg.secret_fields():
        if field.endswith("url_env") and not secrets[name].startswith(("http://", "https://")):
            raise ConfigError(f"{source}: {field} = {name!r}: the URL in {name} must start with http:// or https://")
    cfg.with_secrets(secrets)
    timeouts = {f"providers.{n}.timeout_s": p.timeout_s for n in ("sms", "smtp", "dingtalk", "wecom")
                if (p := getattr(cfg.providers, n)) is not None}
    if timeouts and cfg.retry.lease_s <= max(timeouts.values()):
        worst = max(timeouts, key=timeouts.__getitem__)
        raise ConfigError(f"{source}: retry.lease_s = {cfg.retry.lease_s!r}: must be longer than {worst} "
                          f"({timeouts[worst]}), or a slow send would be started twice")
    have = cfg.providers.configured()
    for where, group in cfg.groups():
        if group.reports and not (group.emails and "email" in group.channels):
            raise ConfigError(f"{source}: recipients.{where}.reports = {list(group.reports)!r}: reports go by "
                              "e-mail: the group needs emails and the email channel")
        if missing := [c for c in group.channels if c not in have]:
            names = ", ".join("providers." + ("smtp" if c == "email" else c) for c in missing)
            raise ConfigError(f"{source}: recipients.{where}.channels = {list(group.channels)!r}: "
                              f"no provider configured for {', '.join(missing)} ({names})")
    try:
        Renderer(cfg).check()
    except TemplateConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return cfg


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> NotifyConfig:
    """The configuration in ``path`` (YAML), secrets read from ``environ`` (default: the process environment)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the notification config: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(raw, str(path), environ)


# --------------------------------------------------------------------------- the service's environment


class ServeEnv(BaseSettings):
    """The service's own environment variables, ``LINGTAN_NOTIFY_<FIELD>``; an empty value counts as unset
    (except the port, which must then be a number)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    host: str = DEFAULT_HOST
    port: int = Field(DEFAULT_PORT, ge=1, le=65535)
    config: Path | None = None  # None: <state_dir>/notify.yaml
    database_url: str | None = None  # None: the platform's database

    @field_validator("host", "config", "database_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, v: Any) -> Any:
        if v == "":
            raise PydanticUseDefault()
        return v

    @field_validator("port", mode="wrap")
    @classmethod
    def _tcp_port(cls, v: Any, handler: Any) -> int:
        try:  # what int() takes: pydantic alone would also take "8095.0"
            return handler(int(v) if isinstance(v, str) else v)
        except ValueError:
            raise PydanticCustomError("tcp_port", "not a TCP port (1-65535)") from None


def _from_mapping(environ: Mapping[str, str]) -> dict[str, Any]:
    """Every field of :class:`ServeEnv` from ``environ`` (its default if absent). Given for every field, the
    constructor's values win over the process environment, which pydantic-settings reads as well."""
    return {name: environ.get(ENV_PREFIX + name.upper(), field.default) for name, field in ServeEnv.model_fields.items()}


@dataclass(frozen=True)
class ServeSettings:
    """Where ``lingtan notify serve`` listens, which config it reads and where it keeps its queue."""

    host: str
    port: int
    config_path: Path
    database_url: str


def serve_settings(environ: Mapping[str, str] | None = None, state_dir: Path | None = None) -> ServeSettings:
    """``LINGTAN_NOTIFY_HOST`` (127.0.0.1), ``LINGTAN_NOTIFY_PORT`` (8095), ``LINGTAN_NOTIFY_CONFIG``
    (``<state_dir>/notify.yaml``) and ``LINGTAN_NOTIFY_DATABASE_URL`` (the platform's database).

    Read from ``environ`` alone if given, else from the process environment; the state directory and
    the platform database are the platform's settings (:mod:`lingtan.settings`)."""
    settings = load_settings(**({"state_dir": state_dir} if state_dir else {}))
    try:
        env = ServeEnv() if environ is None else ServeEnv(**_from_mapping(environ))
    except ValidationError as exc:  # e.g. "LINGTAN_NOTIFY_PORT = 'http': not a TCP port (1-65535)"
        raise ConfigError("; ".join(f"{ENV_PREFIX}{str(e['loc'][0]).upper()} = {e['input']!r}: {e['msg']}"
                                    for e in exc.errors(include_url=False))) from None
    return ServeSettings(host=env.host, port=env.port,
                         config_path=env.config or Path(settings.state_dir) / "notify.yaml",
                         database_url=env.database_url or settings.sql_url)
