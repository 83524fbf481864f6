"""The user manual: docs/ built with mkdocs (strict), Chinese and English pages with the same files and anchors,
nothing loaded from the network, served by the portal at /help/ without login, and linked from every page."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
import yaml

from lingtan.park.loader import parse_park
from lingtan_proxy import views_help
from tests.proxy.conftest import BASE, login, make_user, state_of

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
TEMPLATES = REPO / "auth-proxy" / "src" / "lingtan_proxy" / "templates"
PORTAL_PAGES = ("login", "second-factor", "password", "enrol-totp", "overview", "analysis", "profile", "users", "roles",
                "audit", "tokens", "dashboards")
ALERTS = ("meter-silent", "data-quality", "consumption-abnormal", "daily-co2", "buffer-growing", "notifications",
          "mute-timings")
HEADING_ID = re.compile(r"<h[1-6][^>]*\bid=\"([^\"]+)\"")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The manual built exactly as `mkdocs build` does, with strict mode: any warning fails."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    out = tmp_path_factory.mktemp("help") / "site"
    cfg = load_config(str(REPO / "mkdocs.yml"), site_dir=str(out))
    assert cfg.strict, "mkdocs.yml sets strict: true"
    build(cfg)  # raises mkdocs.exceptions.Abort on the first warning in strict mode
    return out


def ids(html_file: Path) -> list[str]:
    return HEADING_ID.findall(html_file.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- the site


def test_manual_builds_with_every_page(site):
    for lang in ("zh", "en"):
        for page in ("index", "install", "park-model", "screens", "alerts", "api", "security"):
            assert (site / lang / f"{page}.html").is_file(), f"{lang}/{page}.html"
    for ref in ("index", "architecture", "accounting", "security", "park-model", "demo-park", "schema", "simulator",
                "telegraf", "benchmarks"):
        assert (site / f"{ref}.html").is_file(), f"{ref}.html"
    assert (site / "search.html").is_file() and (site / "search" / "search_index.json").is_file()


def test_every_chinese_page_has_an_english_page_with_the_same_anchors(site):
    zh = sorted(p.name for p in (DOCS / "zh").glob("*.md"))
    en = sorted(p.name for p in (DOCS / "en").glob("*.md"))
    assert zh == en
    for name in zh:
        page = name.removesuffix(".md") + ".html"
        zh_ids, en_ids = ids(site / "zh" / page), ids(site / "en" / page)
        assert zh_ids == en_ids, f"{page}: zh {zh_ids} vs en {en_ids}"
        assert all(re.fullmatch(r"[a-z0-9][a-z0-9-]*", i) for i in zh_ids), f"{page}: explicit ASCII anchors {zh_ids}"
    assert set(PORTAL_PAGES) <= set(ids(site / "zh" / "screens.html"))
    assert set(ALERTS) <= set(ids(site / "zh" / "alerts.html"))


def test_every_portal_page_links_to_an_existing_section(site):
    anchors = {}
    for tpl in TEMPLATES.glob("*.html"):
        m = re.search(r'{%\s*set help_anchor\s*=\s*"([^"#]+)#([^"]+)"\s*%}', tpl.read_text(encoding="utf-8"))
        if m:
            anchors[tpl.name] = m.groups()
    for name in ("login.html", "second_factor.html", "password.html", "enrol_totp.html", "overview.html", "analysis.html",
                 "profile.html", "users.html", "roles.html", "audit.html", "tokens.html"):
        assert name in anchors, f"{name} sets help_anchor"
    for tpl, (page, anchor) in anchors.items():
        for lang in ("zh", "en"):
            assert anchor in ids(site / lang / page), f"{tpl}: {lang}/{page}#{anchor}"


def test_site_loads_nothing_from_the_network_and_fits_the_portal_csp(site):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 20
    for page in pages:
        html = page.read_text(encoding="utf-8")
        for tag in re.findall(r"<(?:link|script|img|iframe|source|embed|object)\b[^>]*>", html, flags=re.I):
            for url in re.findall(r'\b(?:href|src|data)\s*=\s*"([^"]*)"', tag, flags=re.I):
                assert not re.match(r"(?i)(https?:)?//", url), f"{page.relative_to(site)}: {tag}"
        # CSP of the proxy: script-src 'self', style-src 'self' (no inline script, style element or attribute)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html, flags=re.I), f"inline script in {page}"
        assert not re.search(r"<style\b|\sstyle=\"", html, flags=re.I), f"inline style in {page}"
    for css in site.rglob("*.css"):
        assert not re.search(r"(?i)(@import|url\()\s*['\"]?(https?:)?//", css.read_text(encoding="utf-8")), css


def test_code_blocks_render_as_code_blocks(site):
    """Python-Markdown does not nest ``` fences in list items: they would come out as inline code."""
    for page in [site / "index.html", *(site / "zh").glob("*.html"), *(site / "en").glob("*.html")]:
        html = page.read_text(encoding="utf-8")
        assert not re.search(r"<code>(sh|yaml|text|json)\n", html), f"a fence inside a list item in {page.name}"
        assert "```" not in html, page


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_park_model_example_is_a_valid_park(lang, tmp_path):
    text = (DOCS / lang / "park-model.md").read_text(encoding="utf-8")
    example = re.search(r"```yaml\n(.*?)```", text, flags=re.S).group(1)
    park = parse_park(example, tmp_path / "example.yaml")
    assert [e.id for e in park.enterprises] == ["e01"]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_alert_thresholds_in_the_manual_are_the_real_ones(lang):
    real = REPO / "grafana" / "alert-thresholds.yaml"
    if not real.is_file():
        pytest.skip("grafana/alert-thresholds.yaml not present")
    text = (DOCS / lang / "alerts.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(silent_minutes:.*?)```", text, flags=re.S).group(1)
    assert set(yaml.safe_load(block)) == set(yaml.safe_load(real.read_text(encoding="utf-8")))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_notification_example_is_a_valid_notify_config(lang):
    config = pytest.importorskip("lingtan_notify.config")
    text = (DOCS / lang / "alerts.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(locale:.*?)```", text, flags=re.S).group(1)
    cfg = config.NotifyConfig.model_validate(yaml.safe_load(block))
    assert cfg.providers.configured() == {"sms", "email", "dingtalk"}
    assert [g.name for g in cfg.route("e02", "warning", "firing")] == [cfg.recipients.default[0].name]


# --------------------------------------------------------------------------- build_manual


def test_build_manual_builds_once_and_again_when_a_source_changes(tmp_path):
    src = tmp_path / "repo"
    shutil.copytree(DOCS, src / "docs")
    shutil.copy(REPO / "mkdocs.yml", src / "mkdocs.yml")
    out = tmp_path / "state" / "help-site"
    assert views_help.build_manual(out, config=src / "mkdocs.yml") == out.resolve()
    index = out / "zh" / "index.html"
    first = index.stat().st_mtime_ns
    views_help.build_manual(out, config=src / "mkdocs.yml")
    assert index.stat().st_mtime_ns == first, "unchanged sources: no rebuild"
    time.sleep(0.01)
    page = src / "docs" / "zh" / "index.md"
    page.write_text(page.read_text(encoding="utf-8").replace("# 概述 {#overview}", "# 平台概述 {#overview}"),
                    encoding="utf-8")
    views_help.build_manual(out, config=src / "mkdocs.yml")
    assert "平台概述" in index.read_text(encoding="utf-8")
    views_help.build_manual(out, force=True, config=src / "mkdocs.yml")
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".help-site.") and p.is_dir()], "no leftovers"
    with pytest.raises(views_help.ManualUnavailable):
        views_help.build_manual(tmp_path / "other", config=tmp_path / "missing" / "mkdocs.yml")


# --------------------------------------------------------------------------- served by the portal


def test_help_is_served_without_login(client):
    r = client.get("/help", base_url=BASE)
    assert r.status_code in (301, 302, 308) and r.headers["Location"].endswith("/help/index.html")
    for path in ("/help/", "/help/index.html", "/help/zh/screens.html", "/help/en/screens.html", "/help/zh/",
                 "/help/css/manual.css", "/help/search/search_index.json"):
        r = client.get(path, base_url=BASE)
        assert r.status_code == 200, path
    assert 'id="overview"' in client.get("/help/zh/screens.html", base_url=BASE).get_data(as_text=True)
    r = client.get("/help/en", base_url=BASE)  # a directory: redirected so that relative links resolve
    assert r.status_code in (301, 302, 308) and r.headers["Location"].endswith("/help/en/")
    assert client.get("/help/zh/no-such-page.html", base_url=BASE).status_code == 404


def test_help_cannot_leave_the_site(app, client):
    state_dir = Path(state_of(app).settings.state_dir)
    (state_dir / "secret.txt").write_text("MARKER-STATE-DIR", encoding="utf-8")
    (state_dir.parent / "secret.txt").write_text("MARKER-PARENT", encoding="utf-8")
    assert client.get("/help/", base_url=BASE).status_code == 200  # the site exists
    for path in ("/help/../secret.txt", "/help/%2e%2e/secret.txt", "/help/..%2fsecret.txt", "/help/%2e%2e%2fsecret.txt",
                 "/help/zh/../../secret.txt", "/help/zh/%2e%2e/%2e%2e/secret.txt", "/help/..%5csecret.txt",
                 "/help/%2e%2e/%2e%2e/secret.txt", "/help/.lingtan-manual", "/help/%2fetc%2fpasswd",
                 "/help/../proxy/secret.key", "/help/%2e%2e/proxy/secret.key"):
        r = client.get(path, base_url=BASE, follow_redirects=True)
        body = r.get_data(as_text=True)
        assert "MARKER" not in body and "root:" not in body, path
        assert r.status_code == 404, (path, r.status_code)


def test_pages_link_to_their_section_of_the_manual(app, client):
    page = client.get("/login", base_url=BASE).get_data(as_text=True)
    assert 'href="/help/zh/screens.html#login"' in page
    acct = make_user(app, "helpop", ["operator"], park_scope=True, totp=False)
    login(client, acct)
    page = client.get("/overview", base_url=BASE).get_data(as_text=True)
    assert 'href="/help/zh/screens.html#overview"' in page
    assert 'href="/help/zh/screens.html#profile"' in client.get("/profile", base_url=BASE).get_data(as_text=True)
    page = client.get("/overview?lang=en", base_url=BASE).get_data(as_text=True)
    assert 'href="/help/en/screens.html#overview"' in page


def test_help_url_follows_the_locale(app):
    from flask import g

    with app.test_request_context("/"):
        g.locale = "en"
        assert views_help.help_url("screens", "overview") == "/help/en/screens.html#overview"
        g.locale = "zh"
        assert views_help.help_url("alerts.html") == "/help/zh/alerts.html"


def test_missing_sources_answer_404_with_a_reason(app, client, monkeypatch, tmp_path):
    monkeypatch.setattr(views_help, "MKDOCS_YML", tmp_path / "not-here" / "mkdocs.yml")
    r = client.get("/help/", base_url=BASE)
    assert r.status_code == 404
    assert "mkdocs" in r.get_data(as_text=True)
