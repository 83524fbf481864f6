"""An unexpected error: the client gets an error id, never the exception's text; the log has the trace."""

from __future__ import annotations

import logging

from tests.proxy.conftest import BASE


def _boom():
    raise RuntimeError("password=hunter2 in the connection string")


def test_internal_errors_show_an_id_not_the_exception(app, caplog):
    app.add_url_rule("/api/v1/boom", "boom_api", _boom)
    app.add_url_rule("/help-boom", "boom_page", _boom)
    client = app.test_client()
    with caplog.at_level(logging.ERROR):
        r = client.get("/api/v1/boom", base_url=BASE)
    assert r.status_code == 500
    err = r.json["error"]
    assert err["code"] == "internal_error" and len(err["id"]) == 12
    assert "hunter2" not in r.get_data(as_text=True) and "RuntimeError" not in r.get_data(as_text=True)
    assert err["id"] in caplog.text and "hunter2" in caplog.text and "Traceback" in caplog.text
    page = client.get("/help-boom", base_url=BASE)
    assert page.status_code == 500 and "hunter2" not in page.get_data(as_text=True)
