"""Smoke test of the auth-proxy benchmark harness (lingtan_tools.bench.proxy): real calc-service, real proxy over
TLS, real wrk. Only that it runs and every answer was a 200; the targets belong to ``make bench``."""

from __future__ import annotations

from lingtan_tools.bench.proxy import proxy_stack, wrk


def test_proxy_bench_harness_runs_without_errors() -> None:
    with proxy_stack() as st:
        direct = wrk(st["direct"], connections=1, threads=1, seconds=1)
        proxied = wrk(st["proxied"], connections=2, threads=1, seconds=2, headers={"Cookie": st["cookie"]})
    for r in (direct, proxied):
        assert r["requests"] > 0 and r["errors"] == 0, r["raw"]
        assert r["p50_ms"] > 0
