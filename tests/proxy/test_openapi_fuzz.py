"""schemathesis against the proxy's own OpenAPI document: no 5xx and no answer outside the schema.

The API behind it is real (calc-service over HTTP, InfluxDB); the token sees the whole park and every
data kind, with a rate limit high enough for the run.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from lingtan.proxy.tokens import create_token
from tests.proxy.conftest import make_user, state_of


@pytest.fixture
def api_schema(app):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


@pytest.fixture
def token(app):
    make_user(app, "fuzzer", ["api_client"], park_scope=True, totp=False)
    st = state_of(app)
    with st.db() as s:
        from lingtan.proxy.identity import find_user

        _row, clear = create_token(s, st.ctx, find_user(s, "fuzzer"), name="fuzz", enterprises=["park"],
                                   kinds=["energy", "carbon", "intensity", "realtime", "flows"], days=1,
                                   rate_per_minute=100_000, all_enterprises=set(st.enterprises), ip="t")
    return clear


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_read_api_conforms(case, token):
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, base_url="https://localhost")


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_read_api_without_credentials(case):
    """Anonymous callers get 401 in the documented error format, never data and never a 5xx."""
    resp = case.call_and_validate(base_url="https://localhost")
    if case.path != "/api/v1/openapi.json":
        assert resp.status_code == 401
