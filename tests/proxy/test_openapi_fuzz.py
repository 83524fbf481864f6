"""schemathesis against the proxy's own OpenAPI document: no 5xx and no answer outside the schema.

The API behind it is real (calc-service over HTTP, InfluxDB); the token sees the whole park and every
data kind, with a rate limit high enough for the run. (schemathesis' pytest plugin does not load under
pytest 9, so the operations' hypothesis strategies are driven directly.)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from lingtan_proxy.tokens import create_token
from tests.proxy.conftest import make_user, state_of


@pytest.fixture
def token(app):
    make_user(app, "fuzzer", ["api_client"], park_scope=True, totp=False)
    st = state_of(app)
    with st.db() as s:
        from lingtan_proxy.identity import find_user

        _row, clear = create_token(s, st.ctx, find_user(s, "fuzzer"), name="fuzz", enterprises=["park"],
                                   kinds=["energy", "carbon", "intensity", "realtime", "flows", "analysis"], days=1,
                                   rate_per_minute=100_000, all_enterprises=set(st.enterprises), ip="t")
    return clear


def operations(app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    ops = [result.ok() for result in schema.get_all_operations()]
    analyses = {f"/api/v1/analysis/{topic}" for topic in ("structure", "cost", "compare", "trend", "pareto", "balance",
                                                                     "efficiency", "benchmarks")}
    assert {op.path for op in ops} == {"/api/v1/entities", "/api/v1/energy", "/api/v1/carbon", "/api/v1/intensity",
                                       "/api/v1/realtime", *analyses}
    return ops


def run(op, headers, examples: int, extra=None) -> None:
    @given(case=op.as_strategy())
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        # a schema-valid request may still be refused with a 4xx (start after end, say): only 5xx and
        # answers outside the documented schema, status codes and content types are failures here
        resp = case.call_and_validate(headers=headers, base_url="https://localhost",
                                      excluded_checks=[positive_data_acceptance])
        if extra:
            extra(case, resp)

    check()


def test_read_api_conforms(app, token):
    for op in operations(app):
        run(op, {"Authorization": f"Bearer {token}"}, 30)


def test_read_api_without_credentials(app):
    """Anonymous callers get 401 in the documented error format, never data and never a 5xx."""

    def unauthorised(case, resp):
        assert resp.status_code == 401, (case.path, resp.status_code)

    for op in operations(app):
        run(op, {}, 5, unauthorised)
