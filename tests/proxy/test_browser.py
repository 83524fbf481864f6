"""The portal in a real browser: Debian's chromium, driven by Playwright, against `lingtan proxy serve` over TLS.

Login with TOTP, lockout, what each role sees, keyboard-only login, and downloading the audit export.
Chromium does not know the park CA (a fresh profile per run), so certificate errors are ignored here;
TLS itself is checked with verification in test_live_server.py.
"""

from __future__ import annotations

import csv
import io
import shutil

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.proxy.conftest import PASSWORD, make_user

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# without these, chromium tries Google's services at start-up, which a closed network refuses
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, live):
    ctx = browser.new_context(ignore_https_errors=True, base_url=live["url"], accept_downloads=True, locale="zh-CN")
    p = ctx.new_page()
    yield p
    ctx.close()


def log_in(page, username: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()


def test_login_with_totp_reaches_the_overview(app, page):
    acct = make_user(app, "browser.op", ["operator"], park_scope=True)
    log_in(page, "browser.op")
    expect(page).to_have_url("/login/second-factor".join([page.url.split("/login")[0], ""]))
    page.get_by_label("动态验证码（6位）").fill(acct.code())
    page.get_by_role("button", name="验证").click()
    expect(page).to_have_url(page.url.split("/overview")[0] + "/overview")
    expect(page.locator("h1")).to_be_visible()
    for text in ("当前功率（按来源）", "今日综合能耗", "今日二氧化碳排放", "今日可再生能源占比"):
        expect(page.get_by_text(text).first).to_be_visible()
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    page.goto("/overview?lang=en")
    expect(page.get_by_text("Energy today").first).to_be_visible()


def test_wrong_code_and_lockout(app, page):
    make_user(app, "browser.lock", ["operator"], park_scope=True, totp=False)
    for _ in range(5):
        log_in(page, "browser.lock", "not-the-password")
        expect(page.get_by_role("alert")).to_contain_text("用户名或密码错误")
    log_in(page, "browser.lock")  # right password, locked account: the same message
    expect(page.get_by_role("alert")).to_contain_text("用户名或密码错误")
    assert "/login" in page.url


def test_keyboard_only_login(app, page):
    make_user(app, "browser.kb", ["analyst"], park_scope=True, totp=False)
    page.goto("/login")
    assert page.evaluate("document.activeElement.id") == "username"  # autofocus
    page.keyboard.type("browser.kb")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/overview")


def test_role_limits_in_the_ui(app, page):
    acct = make_user(app, "browser.view", ["operator"], park_scope=True)
    log_in(page, "browser.view")
    page.get_by_label("动态验证码（6位）").fill(acct.code())
    page.get_by_role("button", name="验证").click()
    page.wait_for_url("**/overview")
    nav = page.get_by_role("navigation", name="主菜单")
    expect(nav.get_by_role("link", name="园区总览")).to_be_visible()
    for hidden in ("用户管理", "角色管理", "审计日志", "API 令牌"):
        expect(nav.get_by_role("link", name=hidden)).to_have_count(0)
    resp = page.goto("/admin/users")
    assert resp.status == 403
    expect(page.get_by_role("alert")).to_contain_text("没有权限")


def test_audit_admin_downloads_the_export(app, page):
    acct = make_user(app, "browser.audit", ["audit_admin"])
    log_in(page, "browser.audit")
    page.get_by_label("动态验证码（6位）").fill(acct.code())
    page.get_by_role("button", name="验证").click()
    page.wait_for_url("**/overview")
    page.get_by_role("link", name="审计日志").first.click()
    page.wait_for_url("**/audit")
    expect(page.get_by_text("login.success").first).to_be_visible()
    with page.expect_download() as info:
        page.get_by_role("link", name="导出 CSV").click()
    download = info.value
    assert download.suggested_filename.startswith("audit-") and download.suggested_filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8-sig").read())))  # noqa: SIM115
    assert {"seq", "time", "username", "action", "result", "hash"} <= set(rows[0])
    assert any(r["action"] == "login.success" and r["username"] == "browser.audit" for r in rows)
    with page.expect_download() as info:
        page.get_by_role("link", name="导出 Excel").click()
    assert info.value.suggested_filename.endswith(".xlsx")


def test_analysis_charts_draw_under_the_csp(app, page):
    """The analysis pages draw their charts with the vendored uPlot, without a CSP violation or script error."""
    acct = make_user(app, "browser.analyst", ["energy_manager"], park_scope=True)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    log_in(page, "browser.analyst")
    page.get_by_label("动态验证码（6位）").fill(acct.code())
    page.get_by_role("button", name="验证").click()
    page.wait_for_url("**/overview")
    page.get_by_role("navigation", name="主菜单").get_by_role("link", name="能耗分析").click()
    page.wait_for_url("**/analysis/structure")
    for topic, tab in (("structure", "用能结构"), ("pareto", "重点能耗环节"), ("compare", "同比环比"), ("cost", "能源成本")):
        page.goto(f"/analysis/{topic}?entity=park&start=2026-03-01&end=2026-03-03")
        expect(page.get_by_role("navigation", name="能耗分析").get_by_role("link", name=tab)).to_have_attribute(
            "aria-current", "page")
        expect(page.locator("#chart[data-drawn=true] canvas")).to_have_count(1)
        assert page.locator("#chart canvas").bounding_box()["width"] > 300
    assert problems == [], problems
