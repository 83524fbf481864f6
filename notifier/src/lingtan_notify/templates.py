"""Message templates: Jinja2 (sandboxed), Simplified Chinese by default, English optional.

Each locale has four templates: ``sms``, ``email_subject``, ``email_body`` and ``robot`` (DingTalk/WeCom
markdown, titled with the rendered subject). ``notify.yaml`` may replace any of them; the rest are the
built-in ones below. Every template sees one alert (:func:`alert_context`): ``status``, ``resolved``,
``alertname``, ``severity``, ``severity_name``, ``enterprise``, ``enterprise_name``, ``summary``,
``description`` (an annotation ``summary_<locale>`` or ``description_<locale>`` wins for that
locale), ``labels``, ``annotations``, ``values``, ``starts_at``/``ends_at`` (local time,
``YYYY-MM-DD HH:MM:SS``), ``starts_at_short``/``ends_at_short`` (``MM-DD HH:MM``), ``duration``,
``generator_url``, ``silence_url``, ``dashboard_url``, ``panel_url``, ``fingerprint``, ``receiver``,
``external_url`` and ``title``. A missing name renders empty; the filter ``num`` prints numbers shortly.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from jinja2 import ChainableUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

KINDS = ("sms", "email_subject", "email_body", "robot")
SEVERITY_NAMES = {
    "zh": {"critical": "严重", "major": "重要", "warning": "警告", "minor": "次要", "info": "提示"},
    "en": {"critical": "Critical", "major": "Major", "warning": "Warning", "minor": "Minor", "info": "Info"},
}
PARK_NAME = {"zh": "园区", "en": "Park"}

DEFAULTS: dict[str, dict[str, str]] = {
    "zh": {
        "sms": (
            "{% if resolved %}已恢复{% else %}告警（{{ severity_name }}）{% endif %}｜{{ enterprise_name }}："
            "{{ (summary or alertname).rstrip('。.') }}"
            "{% if not resolved and description %}。{{ description.rstrip('。.') }}{% endif %}"
            "{% if resolved %}。恢复于 {{ ends_at_short }}，持续 {{ duration }}"
            "{% else %}。开始于 {{ starts_at_short }}{% endif %}"
        ),
        "email_subject": (
            "[零碳告警] {% if resolved %}已恢复{% else %}{{ severity_name }}{% endif %}｜"
            "{{ enterprise_name }}：{{ summary or alertname }}"
        ),
        "email_body": """\
{% if resolved %}告警已恢复。{% else %}告警已触发，请及时处理。{% endif %}


企业：{{ enterprise_name }}{% if enterprise and enterprise != enterprise_name %}（{{ enterprise }}）{% endif %}

告警：{{ alertname }}
级别：{{ severity_name }}
状态：{{ '已恢复' if resolved else '告警中' }}
{% if summary %}摘要：{{ summary }}
{% endif %}
{% if description %}详情：{{ description }}
{% endif %}
开始时间：{{ starts_at }}
{% if resolved %}恢复时间：{{ ends_at }}（持续 {{ duration }}）
{% endif %}
{% if values %}数值：{% for k, v in values|dictsort %}{{ k }} = {{ v|num }}{% if not loop.last %}，{% endif %}{% endfor %}

{% endif %}
{% if generator_url %}告警规则：{{ generator_url }}
{% endif %}
{% if dashboard_url %}仪表板：{{ dashboard_url }}
{% endif %}
{% if silence_url and not resolved %}静默此告警：{{ silence_url }}
{% endif %}

标签：{% for k, v in labels|dictsort %}{{ k }}={{ v }}{% if not loop.last %}, {% endif %}{% endfor %}


--
本邮件由零碳平台告警通知服务自动发送，请勿直接回复。
""",
        "robot": """\
### {{ subject }}
- 企业：{{ enterprise_name }}
- 级别：{{ severity_name }}
- 状态：{{ '已恢复' if resolved else '告警中' }}
- 开始：{{ starts_at }}
{% if resolved %}- 恢复：{{ ends_at }}（持续 {{ duration }}）
{% endif %}
{% if description %}

> {{ description }}
{% endif %}
{% if generator_url %}

[查看告警规则]({{ generator_url }})
{% endif %}
""",
    },
    "en": {
        "sms": (
            "{% if resolved %}RESOLVED{% else %}{{ severity_name|upper }}{% endif %} | {{ enterprise_name }}: "
            "{{ (summary or alertname).rstrip('。.') }}"
            "{% if not resolved and description %}. {{ description.rstrip('。.') }}{% endif %}"
            "{% if resolved %}. Resolved {{ ends_at_short }} after {{ duration }}"
            "{% else %}. Since {{ starts_at_short }}{% endif %}"
        ),
        "email_subject": (
            "[Lingtan alert] {% if resolved %}Resolved{% else %}{{ severity_name }}{% endif %} | "
            "{{ enterprise_name }}: {{ summary or alertname }}"
        ),
        "email_body": """\
{% if resolved %}The alert has resolved.{% else %}An alert is firing; please check.{% endif %}


Enterprise: {{ enterprise_name }}{% if enterprise and enterprise != enterprise_name %} ({{ enterprise }}){% endif %}

Alert: {{ alertname }}
Severity: {{ severity_name }}
Status: {{ 'resolved' if resolved else 'firing' }}
{% if summary %}Summary: {{ summary }}
{% endif %}
{% if description %}Details: {{ description }}
{% endif %}
Started: {{ starts_at }}
{% if resolved %}Resolved: {{ ends_at }} (after {{ duration }})
{% endif %}
{% if values %}Values: {% for k, v in values|dictsort %}{{ k }} = {{ v|num }}{% if not loop.last %}, {% endif %}{% endfor %}

{% endif %}
{% if generator_url %}Alert rule: {{ generator_url }}
{% endif %}
{% if dashboard_url %}Dashboard: {{ dashboard_url }}
{% endif %}
{% if silence_url and not resolved %}Silence: {{ silence_url }}
{% endif %}

Labels: {% for k, v in labels|dictsort %}{{ k }}={{ v }}{% if not loop.last %}, {% endif %}{% endfor %}


--
Sent automatically by the Lingtan alert notification service; please do not reply.
""",
        "robot": """\
### {{ subject }}
- Enterprise: {{ enterprise_name }}
- Severity: {{ severity_name }}
- Status: {{ 'resolved' if resolved else 'firing' }}
- Started: {{ starts_at }}
{% if resolved %}- Resolved: {{ ends_at }} (after {{ duration }})
{% endif %}
{% if description %}

> {{ description }}
{% endif %}
{% if generator_url %}

[Alert rule]({{ generator_url }})
{% endif %}
""",
    },
}

# a realistic alert used to try every template at start-up
SAMPLE_ALERT: dict[str, Any] = {
    "status": "firing",
    "labels": {"alertname": "样例告警", "severity": "critical", "enterprise": "e01"},
    "annotations": {"summary": "样例摘要", "description": "样例详情"},
    "startsAt": "2026-03-02T02:15:00Z", "endsAt": "0001-01-01T00:00:00Z",
    "generatorURL": "http://grafana.local/alerting/grafana/x/view", "fingerprint": "0123456789abcdef",
    "values": {"B": 132.5},
}


class SmsBodyConfig(Protocol):
    """What the templates read of the SMS provider (``providers.sms`` in ``notify.yaml``)."""

    @property
    def body(self) -> Mapping[str, Any]: ...

    @property
    def sign(self) -> str: ...


class ProvidersConfig(Protocol):
    @property
    def sms(self) -> SmsBodyConfig | None: ...


class TemplateConfig(Protocol):
    """The settings the templates read; :class:`lingtan_notify.config.NotifyConfig` has them all.

    Declared here so that this module needs nothing from the config module (which compiles the
    templates at load time). Read-only properties, so a frozen model satisfies it.
    """

    @property
    def locale(self) -> str: ...

    @property
    def timezone(self) -> str: ...

    @property
    def severity_label(self) -> str: ...

    @property
    def enterprise_label(self) -> str: ...

    @property
    def default_severity(self) -> str: ...

    @property
    def severity_names(self) -> Mapping[str, Mapping[str, str]]: ...

    @property
    def enterprise_names(self) -> Mapping[str, str]: ...

    @property
    def sms_max_chars(self) -> int: ...

    @property
    def templates(self) -> Mapping[Any, Any]: ...  # locale -> object with an attribute per KINDS entry

    @property
    def providers(self) -> ProvidersConfig: ...


class TemplateConfigError(ValueError):
    """A template does not compile or fails on a sample alert; the message names ``templates.<locale>.<kind>``."""


def _num(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return str(v)
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _time(raw: Any, tz: ZoneInfo) -> datetime | None:
    if not raw or not isinstance(raw, str):
        return None
    try:
        t = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return None if t.year <= 1 else t.astimezone(tz)  # Grafana sends 0001-01-01 for "not ended"


def duration_text(seconds: float, locale: str) -> str:
    """``1小时5分钟`` / ``1 h 5 min``; under a minute in seconds."""
    s = max(0, int(round(seconds)))
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m, sec = divmod(rem, 60)
    units = (("天", "小时", "分钟", "秒") if locale == "zh" else (" d", " h", " min", " s"))
    parts = [f"{n}{u}" for n, u in zip((d, h, m), units[:3], strict=True) if n]
    if not parts:
        parts = [f"{sec}{units[3]}"]
    return ("" if locale == "zh" else " ").join(parts)


def alert_context(alert: dict[str, Any], payload: dict[str, Any], cfg: TemplateConfig) -> dict[str, Any]:
    """The locale-independent variables of one Grafana alert (see the module docstring)."""
    tz = ZoneInfo(cfg.timezone)
    labels = {str(k): str(v) for k, v in (alert.get("labels") or {}).items()}
    annotations = {str(k): str(v) for k, v in (alert.get("annotations") or {}).items()}
    starts, ends = _time(alert.get("startsAt"), tz), _time(alert.get("endsAt"), tz)
    resolved = alert.get("status") == "resolved"
    fmt = lambda t, f: t.strftime(f) if t else ""  # noqa: E731
    return {
        "status": alert.get("status", "firing"), "resolved": resolved, "firing": not resolved,
        "alertname": labels.get("alertname", ""),
        "severity": (labels.get(cfg.severity_label) or cfg.default_severity).strip().lower(),
        "enterprise": labels.get(cfg.enterprise_label, ""),
        "summary": annotations.get("summary", ""), "description": annotations.get("description", ""),
        "labels": labels, "annotations": annotations, "values": alert.get("values") or {},
        "value_string": alert.get("valueString", ""),
        "starts_at": fmt(starts, "%Y-%m-%d %H:%M:%S"), "starts_at_short": fmt(starts, "%m-%d %H:%M"),
        "ends_at": fmt(ends, "%Y-%m-%d %H:%M:%S") if resolved else "",
        "ends_at_short": fmt(ends, "%m-%d %H:%M") if resolved else "",
        "duration_s": (ends - starts).total_seconds() if starts and ends and resolved else None,
        "generator_url": alert.get("generatorURL", ""), "silence_url": alert.get("silenceURL", ""),
        "dashboard_url": alert.get("dashboardURL", ""), "panel_url": alert.get("panelURL", ""),
        "fingerprint": alert.get("fingerprint", ""), "receiver": payload.get("receiver", ""),
        "external_url": payload.get("externalURL", ""), "title": payload.get("title", ""),
    }


class Renderer:
    """Compiles the templates of ``cfg`` once; renders messages and SMS-provider request bodies."""

    def __init__(self, cfg: TemplateConfig):
        self.cfg = cfg
        self.env = SandboxedEnvironment(undefined=ChainableUndefined, trim_blocks=True, lstrip_blocks=True,
                                        autoescape=False)
        self.env.filters["num"] = _num
        self._compiled: dict[tuple[str, str], Template] = {}
        self._values: dict[str, Template] = {}
        for locale, defaults in DEFAULTS.items():
            own = cfg.templates.get(locale)
            for kind in KINDS:
                source = (getattr(own, kind) if own else None) or defaults[kind]
                try:
                    self._compiled[(locale, kind)] = self.env.from_string(source)
                except TemplateError as exc:
                    raise TemplateConfigError(f"templates.{locale}.{kind}: {exc}") from None

    def localize(self, ctx: dict[str, Any], locale: str) -> dict[str, Any]:
        """``ctx`` plus its locale-dependent names: ``severity_name``, ``enterprise_name``, ``duration``."""
        names = {**SEVERITY_NAMES.get(locale, {}), **self.cfg.severity_names.get(locale, {})}
        ent = ctx["enterprise"]
        ent_name = self.cfg.enterprise_names.get(ent) or ctx["labels"].get("enterprise_name") or ent or PARK_NAME[locale]
        dur = ctx.get("duration_s")
        # an alert may carry its summary and description per language (``summary_en``, ``description_zh``, as the
        # calc-service's warnings do, docs/budget.md §4): the group's language wins over the plain annotation
        own = {k: ctx["annotations"].get(f"{k}_{locale}") or ctx[k] for k in ("summary", "description")}
        return {**ctx, **own, "locale": locale, "severity_name": names.get(ctx["severity"], ctx["severity"]),
                "enterprise_name": ent_name, "duration": duration_text(dur, locale) if dur is not None else ""}

    def render(self, locale: str, kind: str, ctx: dict[str, Any]) -> str:
        return self._compiled[(locale, kind)].render(ctx).strip()

    def message(self, channel: str, locale: str, ctx: dict[str, Any]) -> tuple[str, str]:
        """(subject, body) of ``channel`` for an alert context from :func:`alert_context`."""
        lctx = self.localize(ctx, locale)
        subject = " ".join(self.render(locale, "email_subject", lctx).split())
        if channel == "sms":
            text = " ".join(self.render(locale, "sms", lctx).split())
            limit = self.cfg.sms_max_chars
            return subject, text if len(text) <= limit else text[: limit - 1] + "…"
        if channel == "email":
            return subject, self.render(locale, "email_body", lctx) + "\n"
        return subject, self.render(locale, "robot", {**lctx, "subject": subject})

    def provider_value(self, value: Any, variables: dict[str, Any]) -> Any:
        """An SMS-provider body field with every string in it rendered as a template over ``variables``."""
        if isinstance(value, str):
            if value not in self._values:
                self._values[value] = self.env.from_string(value)
            return self._values[value].render(variables)
        if isinstance(value, dict):
            return {k: self.provider_value(v, variables) for k, v in value.items()}
        if isinstance(value, list):
            return [self.provider_value(v, variables) for v in value]
        return value

    def check(self) -> None:
        """Render every template on a firing and a resolved sample alert; :class:`TemplateConfigError` if any fails."""
        resolved = {**SAMPLE_ALERT, "status": "resolved", "endsAt": "2026-03-02T02:45:00Z"}
        for alert in (SAMPLE_ALERT, resolved):
            ctx = alert_context(alert, {"receiver": "sample"}, self.cfg)
            for locale in DEFAULTS:
                lctx = {**self.localize(ctx, locale), "subject": "sample"}
                for kind in KINDS:
                    try:
                        out = self.render(locale, kind, lctx)
                    except Exception as exc:  # noqa: BLE001 - any failure of a user template is reported
                        raise TemplateConfigError(f"templates.{locale}.{kind}: fails on a sample alert: "
                                                  f"{exc.__class__.__name__}: {exc}") from None
                    if kind in ("sms", "email_subject") and not out:
                        raise TemplateConfigError(f"templates.{locale}.{kind}: renders empty on a sample alert")
        sms = self.cfg.providers.sms
        if sms:
            try:
                named = self.localize(alert_context(SAMPLE_ALERT, {}, self.cfg), self.cfg.locale)
                variables = {k: named[k] for k in ("alertname", "severity", "severity_name", "enterprise",
                                                   "enterprise_name", "summary", "fingerprint")}
                self.provider_value(sms.body, {**variables, "alert_status": "firing", "phone": "13800000000",
                                               "text": "样例", "sign": sms.sign, "subject": "样例"})
            except Exception as exc:  # noqa: BLE001
                raise TemplateConfigError(f"providers.sms.body: {exc.__class__.__name__}: {exc}") from None
