"""The notification bridge's Flask application: app factory, one JSON error format.

``create_app()`` loads ``notify.yaml`` (:mod:`lingtan_notify.config`), opens the queue database and,
unless told otherwise, starts the delivery worker (:mod:`lingtan_notify.deliver`). Blueprint:
:mod:`lingtan_notify.api` (``/api/v1/...``). The bridge itself (:class:`Bridge`, :func:`bridge_of`,
:func:`plan_deliveries`) lives in :mod:`lingtan_notify.bridge` and is re-exported here. Run it with
``lingtan notify serve``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask, jsonify
from sqlalchemy.exc import SQLAlchemyError

from lingtan.errors import ApiError, error_body, register_json_errors
from lingtan_notify.api import bp as api_bp
from lingtan_notify.bridge import EXTENSION, Bridge, bridge_of, plan_deliveries
from lingtan_notify.config import NotifyConfig, load_config, serve_settings

log = logging.getLogger(__name__)
# Grafana's webhook sends every alert of a group in one body; a report (POST /api/v1/reports) carries
# its XLSX and PDF base64-encoded, a few hundred kB each (docs/analysis.md §8)
MAX_BODY_BYTES = 16 * 1024 * 1024


def create_app(cfg: NotifyConfig | None = None, *, database_url: str | None = None, config_path: Path | None = None,
               start_worker: bool = True) -> Flask:
    """The bridge app. Without arguments: config and database from :func:`lingtan_notify.config.serve_settings`."""
    if cfg is None or database_url is None:
        serve = serve_settings()
        cfg = cfg or load_config(config_path or serve.config_path)
        database_url = database_url or serve.database_url
    bridge = Bridge(cfg, database_url)
    app = Flask("lingtan_notify")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.ensure_ascii = False  # Chinese messages stay readable
    app.json.sort_keys = False
    app.extensions[EXTENSION] = bridge
    app.register_blueprint(api_bp)

    register_json_errors(app)

    @app.errorhandler(ApiError)  # replaces the generic one: a 401 says how to authenticate
    def _api_error(e: ApiError):
        resp = jsonify(error_body(e.status, e.code, e.message, e.field))
        if e.status == 401:
            resp.headers["WWW-Authenticate"] = 'Bearer realm="lingtan-notify"'
        return resp, e.status

    @app.errorhandler(SQLAlchemyError)
    def _db(e: SQLAlchemyError):
        log.exception("queue database error")
        return jsonify(error_body(503, "queue_unavailable", f"the delivery queue is unavailable: "
                                  f"{e.__class__.__name__}; the notification was NOT accepted")), 503

    if start_worker:
        bridge.worker.start()
    return app


__all__ = ["MAX_BODY_BYTES", "Bridge", "bridge_of", "create_app", "plan_deliveries"]
