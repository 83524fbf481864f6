"""Auth-proxy benchmark: the proxy against its upstream directly, on a small GET, with wrk (Debian's package).

The upstream is the calc-service as ``lingtan calc serve`` runs it (waitress), answering
``GET /api/v1/health``. Through the proxy the same request is ``GET /calc/api/v1/health`` over TLS
with a logged-in session cookie: session lookup, RBAC rule, header rewriting, upstream call.

Three runs in one go:
1. latency, direct: one connection (no queueing for the two cores), p50 of the upstream alone;
2. latency, proxied: the same through the proxy; the difference is what the proxy adds;
3. throughput and errors: 50 connections through the proxy for ``duration_s`` (5 minutes in full).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from lingtan_tools.stack.services import free_port, port_in_use

WRK = shutil.which("wrk") or "/usr/bin/wrk"


def _wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_in_use(port):
            return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port} after {timeout:.0f} s")


@contextmanager
def proxy_stack(env_extra: dict[str, str] | None = None, roles: tuple[str, ...] = ("operator",)):
    """calc-service and auth proxy on free ports (no InfluxDB needed for /health), and a session cookie.

    ``env_extra`` points both at a database and park of their own (the analysis benchmark)."""
    import pyotp
    import requests

    from lingtan.settings import load_settings
    from lingtan_proxy.cli import _context
    from lingtan_proxy.identity import begin_totp, change_password, confirm_totp, create_user, totp_secret

    state = Path(tempfile.mkdtemp(prefix="lingtan-bench-proxy-"))
    calc_port, proxy_port = free_port(), free_port()
    env = {**os.environ, "LINGTAN_STATE_DIR": str(state), "LINGTAN_CALC_PORT": str(calc_port),
           "LINGTAN_PROXY_PORT": str(proxy_port), "LINGTAN_PROXY_HTTP_PORT": "0",
           "LINGTAN_INFLUX_URL": f"http://127.0.0.1:{free_port()}", **(env_extra or {})}
    settings = load_settings(state_dir=state, **({"park_file": env_extra["LINGTAN_PARK_FILE"]}
                                                 if env_extra and "LINGTAN_PARK_FILE" in env_extra else {}))
    db, ctx = _context(settings)
    password = "Energy-Park-2026!q"
    with db() as s:
        user, otp = create_user(s, ctx, username="bench", roles=list(roles), actor="bench", ip="local",
                                park_scope=True)
        problems = change_password(s, ctx, user, otp, password, ip="local")
        assert not problems, problems
        begin_totp(s, ctx, user)
        secret = totp_secret(ctx, user)
        confirm_totp(s, ctx, user, pyotp.TOTP(secret).at(time.time() - 30), ip="local")
    logs = open(state / "bench.log", "wb")  # noqa: SIM115 - closed in finally
    procs = [subprocess.Popen([sys.executable, "-m", "lingtan.cli", *cmd], env=env, stdout=logs,
                              stderr=subprocess.STDOUT) for cmd in (["calc", "serve"], ["proxy", "serve"])]
    try:
        _wait_port(calc_port)
        _wait_port(proxy_port)
        base = f"https://localhost:{proxy_port}"
        sess = requests.Session()
        sess.trust_env = False
        sess.verify = str(state / "pki" / "ca.crt")
        page = sess.get(base + "/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        resp = sess.post(base + "/login", data={"username": "bench", "password": password, "csrf_token": csrf})
        page = resp.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        r = sess.post(base + "/login/second-factor", data={"method": "totp", "code": pyotp.TOTP(secret).now(),
                                                            "csrf_token": csrf})
        assert r.url.endswith("/overview"), r.url
        cookie = f"__Host-lingtan={sess.cookies.get('__Host-lingtan')}"
        yield {"direct": f"http://127.0.0.1:{calc_port}/api/v1/health",
               "proxied": f"{base}/calc/api/v1/health", "cookie": cookie, "base": base, "calc": f"http://127.0.0.1:{calc_port}",
               "session": sess}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(20)
        logs.close()
        shutil.rmtree(state, ignore_errors=True)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(url: str, *, connections: int, seconds: int, threads: int = 2, headers: dict[str, str] | None = None) -> dict:
    """Run wrk with --latency; requests/s, p50/p99 [ms], errors (socket errors + non-2xx/3xx)."""
    cmd = [WRK, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=seconds + 120, check=True).stdout
    pct = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, re.M))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "p50_ms": _ms(pct["50"]), "p99_ms": _ms(pct["99"]),
            "errors": errors + (int(non2xx.group(1)) if non2xx else 0), "raw": out}


def run_proxy(quick: bool) -> list[dict]:
    latency_s, load_s = (5, 10) if quick else (20, 300)
    with proxy_stack() as st:
        hdr = {"Cookie": st["cookie"]}
        wrk(st["proxied"], connections=4, seconds=2, headers=hdr)  # warm up (TLS sessions, pools, caches)
        direct = wrk(st["direct"], connections=1, threads=1, seconds=latency_s)
        proxied = wrk(st["proxied"], connections=1, threads=1, seconds=latency_s, headers=hdr)
        load = wrk(st["proxied"], connections=50, seconds=load_s, headers=hdr)
    added = proxied["p50_ms"] - direct["p50_ms"]
    return [
        {"benchmark": "auth proxy, latency added on a small GET (calc-service /api/v1/health; one connection; "
         "direct HTTP vs. through the proxy over TLS with a session)",
         "result": f"+{added:.2f} ms at p50 ({proxied['p50_ms']:.2f} vs {direct['p50_ms']:.2f} ms)",
         "target": "≤ 2 ms", "pass": added <= 2.0,
         "detail": f"p99 {proxied['p99_ms']:.2f} vs {direct['p99_ms']:.2f} ms; {proxied['rps']:,.0f} vs "
         f"{direct['rps']:,.0f} req/s on one connection; {latency_s} s each"},
        {"benchmark": f"auth proxy, throughput: 50 connections for {load_s} s through the proxy",
         "result": f"{load['rps']:,.0f} requests/s, {load['errors']} errors",
         "target": "≥ 1,000 requests/s and no errors" if not quick else "smoke",
         "pass": load["rps"] >= 1000 and load["errors"] == 0,
         "detail": f"{load['requests']:,} requests, p50 {load['p50_ms']:.1f} ms, p99 {load['p99_ms']:.1f} ms; "
         "gunicorn 2 workers × 16 threads, calc-service on waitress, wrk on the same 2 cores"},
    ]
