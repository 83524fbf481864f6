"""grafana/grafana.ini: only the auth proxy logs people in (issue #4 §4, #5 §3)."""

from __future__ import annotations

import configparser

from lingtan_grafana.build import REPO


def test_grafana_ini_trusts_only_the_proxy():
    ini = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",))
    ini.read(REPO / "grafana" / "grafana.ini", encoding="utf-8")
    assert ini["auth.proxy"]["enabled"] == "true"
    assert ini["auth.proxy"]["header_name"] == "X-WEBAUTH-USER"
    assert ini["auth.proxy"]["whitelist"].strip() == "$__env{LINGTAN_PROXY_IP}"
    assert "Role:X-WEBAUTH-ROLE" in ini["auth.proxy"]["headers"]
    assert ini["auth"]["disable_login_form"] == "true"
    assert ini["auth.basic"]["enabled"] == "false"
    assert ini["auth.anonymous"]["enabled"] == "false"
    assert ini["security"]["disable_initial_admin_creation"] == "true"
    assert ini["security"]["allow_embedding"] == "true"
    assert ini["server"]["serve_from_sub_path"] == "true" and ini["server"]["root_url"].endswith("/grafana/")
    assert ini["plugins"]["preinstall_disabled"] == "true"
    assert ini["smtp"]["password"].startswith("$__env{")  # no secret in the file
