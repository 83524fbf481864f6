"""notify.yaml validation at start-up (errors name file, field and value), the shipped example, templates, backoff."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lingtan_notify.config import ConfigError, load_config, parse_config, serve_settings
from lingtan_notify.deliver import backoff_s, mask
from lingtan_notify.templates import Renderer, alert_context, duration_text
from tests.notify.conftest import ENV, FIRING_TWO, base_config, write_config

EXAMPLE = Path(__file__).resolve().parents[2] / "notifier" / "src" / "lingtan_notify" / "notify.example.yaml"


def _error(tmp_path: Path, raw: dict, environ: dict | None = None) -> str:
    path = write_config(tmp_path, raw)
    with pytest.raises(ConfigError) as exc:
        load_config(path, environ=ENV if environ is None else environ)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: "), msg
    return msg


def _raw() -> dict:
    return base_config(None, None) | {"providers": {"sms": {"url": "http://127.0.0.1:9/sms"}}}


def _set(raw: dict, dotted: str, value) -> dict:
    *parents, last = dotted.split(".")
    node = raw
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
    node[last] = value
    return raw


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("retry.max_attempts", 0, "retry.max_attempts = 0: Input should be greater than or equal to 1"),
    ("retry.backoff_base_s", "soon", "retry.backoff_base_s = 'soon'"),
    ("locale", "fr", "locale = 'fr': Input should be 'zh' or 'en'"),
    ("timezone", "Mars/Olympus", "timezone = 'Mars/Olympus': Value error, is not an IANA time zone"),
    ("recipients.enterprises.e01.0.phones", ["1380000000x"],
     "recipients.enterprises.e01.0.phones = ['1380000000x']: Value error, not phone numbers: 1380000000x"),
    ("recipients.default.0.emails", ["ops-at-park"], "recipients.default.0.emails = ['ops-at-park']"),
    ("recipients.default.0.channels", ["fax"], "recipients.default.0.channels.0 = 'fax'"),
    ("providers.sms.url", "ftp://sms", "providers.sms.url = 'ftp://sms': Value error, must start with http://"),
    ("providers.sms.colour", "blue", "providers.sms.colour = 'blue': Extra inputs are not permitted"),
    ("webhook.token_env", "not a name", "webhook.token_env = 'not a name'"),
    ("retry.lease_s", 10, "retry.lease_s = 10.0: must be longer than providers.sms.timeout_s (10.0)"),
])
def test_bad_values_name_file_field_and_value(tmp_path, field, value, expected):
    assert expected in _error(tmp_path, _set(_raw(), field, value))


def test_secrets_come_from_named_environment_variables(tmp_path):
    env = {k: v for k, v in ENV.items() if k != "LINGTAN_NOTIFY_TOKEN"}
    msg = _error(tmp_path, _raw(), env)
    assert "webhook.token_env = 'LINGTAN_NOTIFY_TOKEN': environment variable LINGTAN_NOTIFY_TOKEN is not set" in msg
    assert "shorter than 16" in _error(tmp_path, _raw(), {**ENV, "LINGTAN_NOTIFY_TOKEN": "short"})
    raw = _set(_raw(), "providers.sms.auth", {"token_env": "MISSING_SMS_TOKEN"})
    assert "providers.sms.auth.token_env = 'MISSING_SMS_TOKEN'" in _error(tmp_path, raw)
    cfg = load_config(write_config(tmp_path, _set(_raw(), "providers.sms.auth", {"token_env": "TEST_SMS_TOKEN"})),
                      environ=ENV)
    assert cfg.secret("TEST_SMS_TOKEN") == ENV["TEST_SMS_TOKEN"]
    assert ENV["TEST_SMS_TOKEN"] not in repr(cfg)  # the value is not a field: never printed with the config


def test_channels_need_providers_and_templates_must_work(tmp_path):
    raw = _raw()
    raw["recipients"]["default"][0]["channels"] = ["sms", "email"]
    assert "recipients.default.0.channels = ['sms', 'email']: no provider configured for email (providers.smtp)" \
        in _error(tmp_path, raw)
    assert "templates.zh.sms:" in _error(tmp_path, _set(_raw(), "templates.zh.sms", "{% if %}"))
    assert "templates.en.email_subject: renders empty" in _error(
        tmp_path, _set(_raw(), "templates.en.email_subject", "{{ nothing }}"))
    assert "providers.sms.body" in _error(tmp_path, _set(_raw(), "providers.sms.body", {"x": "{{ 1 / 0 }}"}))
    bad = tmp_path / "broken.yaml"
    bad.write_text("providers: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        load_config(bad, environ=ENV)
    with pytest.raises(ConfigError, match="missing.yaml: cannot read"):
        load_config(tmp_path / "missing.yaml", environ=ENV)


def test_the_shipped_example_is_valid():
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    env = {"LINGTAN_NOTIFY_TOKEN": "x" * 32, "LINGTAN_SMS_TOKEN": "t", "LINGTAN_SMTP_PASSWORD": "p",
           "LINGTAN_DINGTALK_URL": "https://oapi.dingtalk.com/robot/send?access_token=x",
           "LINGTAN_DINGTALK_SECRET": "SEC0", "LINGTAN_WECOM_URL": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=x"}
    cfg = parse_config(raw, str(EXAMPLE), env)
    assert cfg.providers.configured() == {"sms", "email", "dingtalk", "wecom"}
    assert cfg.route("e01", "critical", "firing") and cfg.locale == "zh"


def test_custom_template_and_sms_length(tmp_path):
    raw = _set(_raw(), "templates.zh.sms", "{{ enterprise_name }}{{ severity_name }}：{{ summary }}" + "！" * 400)
    raw["sms_max_chars"] = 50
    cfg = load_config(write_config(tmp_path, raw), environ=ENV)
    ctx = alert_context(FIRING_TWO["alerts"][0], FIRING_TWO, cfg)
    _subject, text = Renderer(cfg).message("sms", "zh", ctx)
    assert text.startswith("华东精细化工有限公司严重：3号空压机功率超限！") and len(text) == 50 and text.endswith("…")


def test_backoff_duration_and_masking():
    cfg = parse_config({"retry": {"backoff_base_s": 30, "backoff_max_s": 3600, "jitter": 0}}, environ=ENV)
    assert [backoff_s(n, cfg.retry) for n in (1, 2, 3, 8, 20)] == [30, 60, 120, 3600, 3600]
    jittery = parse_config({"retry": {"backoff_base_s": 10, "jitter": 0.5}}, environ=ENV).retry
    assert all(10 <= backoff_s(1, jittery) <= 15 for _ in range(50))
    assert duration_text(1800, "zh") == "30分钟" and duration_text(3900, "en") == "1 h 5 min"
    assert duration_text(90061, "zh") == "1天1小时1分钟" and duration_text(12, "zh") == "12秒"
    assert mask("13800000001") == "138****0001" and mask("energy@e01.example.cn") == "e***@e01.example.cn"


def test_serve_settings_from_environment(tmp_path):
    s = serve_settings({}, state_dir=tmp_path)
    assert (s.host, s.port, s.config_path) == ("127.0.0.1", 8095, tmp_path / "notify.yaml")
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith("lingtan.db")
    env = {"LINGTAN_NOTIFY_HOST": "0.0.0.0", "LINGTAN_NOTIFY_PORT": "9000", "LINGTAN_NOTIFY_CONFIG": "/etc/n.yaml",
           "LINGTAN_NOTIFY_DATABASE_URL": "sqlite:////tmp/n.db"}
    s = serve_settings(env, state_dir=tmp_path)
    assert (s.host, s.port, str(s.config_path), s.database_url) == ("0.0.0.0", 9000, "/etc/n.yaml",
                                                                    "sqlite:////tmp/n.db")
    with pytest.raises(ConfigError, match="LINGTAN_NOTIFY_PORT = 'http'"):
        serve_settings({"LINGTAN_NOTIFY_PORT": "http"}, state_dir=tmp_path)
