"""The calc-service's SQL store on SQLite and on PostgreSQL (both real)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import select

from lingtan.db import make_engine, session_factory
from lingtan_calc.adapters.meter_events import (
    add_replacement,
    adjustments,
    decide,
    quarantines,
    record_quarantines,
    withdraw_replacement,
)
from lingtan_calc.adapters.store import (
    CalcRunRow,
    ImportBatch,
    active_overrides,
    add_override,
    import_production,
    override_history,
    production_frame,
)
from lingtan_calc.core.accounting.factors import Factor

UNITS = {"A": {"a-station"}, "B": {"b-line"}}


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'lingtan.db'}"
    else:
        url = request.getfixturevalue("postgres")
    engine = make_engine(url)
    from lingtan.db import Base

    Base.metadata.drop_all(engine)
    yield session_factory(engine)
    engine.dispose()


def factor(value: float, reason: str) -> Factor:
    return Factor(id="park.gas.ncv", kind="ncv", subject="natural_gas", value=value, unit="MJ/m3",
                  valid_from=dt.date(2026, 1, 1), source={"document": "气质报告", "edition": "2026-03"},
                  confidence="measured", override=True, author="energy.manager", reason=reason)


def test_overrides_are_superseded_never_overwritten(sessions):
    with sessions() as s:
        add_override(s, factor(36.0, "first measurement"))
        add_override(s, factor(35.6, "March measurement"))
        assert [f.value for f in active_overrides(s)] == [35.6]
        hist = override_history(s, "park.gas.ncv")
        assert [(h["active"], h["reason"]) for h in hist] == [(False, "first measurement"), (True, "March measurement")]
        assert hist[1]["factor"]["source"]["document"] == "气质报告"


def test_production_import_all_or_nothing_and_supersede(sessions):
    rows = [{"enterprise": "B", "period_type": "month", "period_start": "2026-03-01", "product": "注塑件",
             "quantity": "1000", "product_unit": "t", "output_value": "5000"}]
    with sessions() as s:
        ok = import_production(s, rows, UNITS, source="march.csv", payload=b"x", author="erp")
        assert ok.accepted and ok.errors == []
        bad = import_production(s, rows + [{"enterprise": "Z", "period_start": "2026-03-01", "quantity": 1}],
                                UNITS, source="bad.csv", payload=b"y", author="erp")
        assert not bad.accepted and bad.errors == ["bad.csv: row 2: enterprise 'Z' is not an enterprise of the park"]
        again = [{**rows[0], "quantity": "1100"}]
        import_production(s, again, UNITS, source="march-v2.csv", payload=b"z", author="erp")
        frame = production_frame(s)
        b = frame[frame["entity"] == "B"]
        assert b["quantity"].tolist() == [1100.0]  # the newer record; the old one is kept, superseded
        park = frame[frame["entity"] == "park"]
        assert park["output_value"].tolist() == [5000.0]
        batches = s.scalars(select(ImportBatch).order_by(ImportBatch.id)).all()
        assert [(b.source, b.accepted, len(b.sha256)) for b in batches] == [
            ("march.csv", True, 64), ("bad.csv", False, 64), ("march-v2.csv", True, 64)]


def test_run_log_keeps_what_changed(sessions):
    with sessions() as s:
        s.add(CalcRunRow(job="job-1", period="hour", start=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
                         end=dt.datetime(2026, 3, 1, 1, tzinfo=dt.UTC), reason="late data", lines=31, seconds=0.2,
                         changed=["B 2026-03-01T10:00:00+08:00: 0.0984 -> 0.172 tce"]))
        s.commit()
        row = s.scalars(select(CalcRunRow)).one()
        assert row.changed[0].startswith("B 2026-03-01T10:00")


def test_meter_events_and_quarantine_decisions(sessions):
    t = pd.Timestamp("2026-03-01T10:16", tz="Asia/Shanghai")
    q = {"point": "m.total", "meter": "m", "enterprise": "B", "carrier": "electricity", "start": t,
         "end": t + pd.Timedelta(minutes=5), "measured": 1e6, "limit": 12_500.0, "event": ""}
    with sessions() as s:
        assert len(record_quarantines(s, [q], {"m.total": "kWh"})) == 1
        assert record_quarantines(s, [q], {"m.total": "kWh"}) == []  # found again: one row
        (row,) = quarantines(s, "open")
        assert row.as_dict()["start"] == "2026-03-01T10:16:00+08:00" and row.unit == "kWh"
        # a full run over the hour no longer finds it (late readings split the interval): cleared
        record_quarantines(s, [], {}, covered=(t.floor("h"), t.floor("h") + pd.Timedelta(hours=1)))
        assert quarantines(s, "cleared") and not quarantines(s, "open")
        record_quarantines(s, [q], {})  # and back
        (row,) = quarantines(s, "open")
        decide(s, row, status="confirmed", author="a", reason="first look")
        decide(s, row, status="corrected", author="b", reason="second look", quantity=66.7)
        assert row.history[0]["status"] == "confirmed" and row.history[0]["by"] == "a"
        rep = add_replacement(s, point="m.total", meter="m", time=t, old_final=997.0, new_initial=1.0, unit="kWh",
                              author="tech", reason="swap")
        adj = adjustments(s).of("m.total")
        assert adj.corrections[0].quantity == 66.7 and adj.corrections[0].start == t
        assert adj.replacements[0].old_final == 997.0 and adj.replacements[0].time == t
        withdraw_replacement(s, rep.id, "tech", "wrong meter")
        assert adjustments(s).of("m.total").replacements == ()
