"""The calc-service Flask application: app factory, one JSON error format.

``create_app()`` reads the typed settings, loads the park model, opens InfluxDB and the SQL
database and, unless told otherwise, starts the scheduler (:mod:`lingtan_calc.service.scheduler`).
Blueprints: :mod:`lingtan_calc.service.api` (``/api/v1/...``), :mod:`lingtan_calc.service.api_meters`
(``/api/v1/meters``, ``/api/v1/quarantine``) and :mod:`lingtan_calc.service.api_analysis`
(``/api/v1/analysis/...``), :mod:`lingtan_calc.service.api_weather` (``/api/v1/weather``), :mod:`lingtan_calc.service.api_forecast`
(``/api/v1/forecast``). Run it with ``lingtan calc serve``.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify

from lingtan.db import make_engine, session_factory
from lingtan.errors import error_body, register_json_errors
from lingtan.influxdb import InfluxClient, InfluxError
from lingtan.park.loader import load_park
from lingtan.park.model import Park
from lingtan.settings import Settings, load_settings
from lingtan_calc.core.accounting.factors import FactorNotFound
from lingtan_calc.service.api import bp as api_bp
from lingtan_calc.service.api_analysis import bp as analysis_bp
from lingtan_calc.service.api_balance import bp as balance_bp
from lingtan_calc.service.api_budget import bp as budget_bp
from lingtan_calc.service.api_forecast import bp as forecast_bp
from lingtan_calc.service.api_meters import bp as meters_bp
from lingtan_calc.service.api_recommendations import bp as recommendations_bp
from lingtan_calc.service.api_reports import bp as reports_bp
from lingtan_calc.service.api_weather import bp as weather_bp
from lingtan_calc.service.scheduler import CalcService, service_of

__all__ = ["create_app", "service_of"]

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, park: Park | None = None, client: InfluxClient | None = None,
               start_scheduler: bool = True) -> Flask:
    settings = settings or load_settings()
    app = Flask("lingtan_calc")
    app.json.ensure_ascii = False  # Chinese names stay readable
    app.json.sort_keys = False
    park = park or load_park(settings.park_file)
    client = client or InfluxClient.from_settings(settings)
    sessions = session_factory(make_engine(settings.sql_url))
    service = CalcService(settings, park, client, sessions)
    app.extensions["lingtan_calc"] = service
    app.register_blueprint(api_bp)
    app.register_blueprint(meters_bp)
    app.register_blueprint(analysis_bp)
    app.register_blueprint(balance_bp)
    app.register_blueprint(recommendations_bp)
    app.register_blueprint(reports_bp)
    app.register_blueprint(weather_bp)
    app.register_blueprint(forecast_bp)
    app.register_blueprint(budget_bp)

    register_json_errors(app)

    @app.errorhandler(FactorNotFound)
    def _factor_missing(e: FactorNotFound):
        return jsonify(error_body(422, "factor_missing", str(e))), 422

    @app.errorhandler(InfluxError)
    def _influx(e: InfluxError):
        return jsonify(error_body(503, "influxdb_unavailable", str(e))), 503

    if start_scheduler:
        service.start()
    return app
