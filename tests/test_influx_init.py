"""`lingtan influx init` against a real influxd (fixture ``influxd`` in conftest.py).

Each test provisions its own database, so the tests do not disturb one another or the
other users of the shared server.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from statistics import mean
from zoneinfo import ZoneInfo

import pytest

from lingtan.influxdb import InfluxClient
from lingtan.park.carriers import Carrier
from lingtan_influx.provision import (
    DEFAULT_FILES_DIR,
    init_influx,
    normalize_space,
    read_statements,
    split_statements,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
EXPECTED_RPS = {  # name -> (duration, shard group duration, default) as SHOW RETENTION POLICIES prints them
    "raw": ("2160h0m0s", "24h0m0s", True),
    "1m": ("9600h0m0s", "168h0m0s", False),
    "15m": ("43800h0m0s", "720h0m0s", False),
    "1h": ("0s", "2160h0m0s", False),
    "1d": ("0s", "8760h0m0s", False),
    "accounting": ("0s", "8760h0m0s", False),
}
LEVELS = ["1m", "15m", "1h", "1d"]
MEASUREMENT_GROUPS = ["carriers", "data_quality", "collector_stats"]


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def client(influxd) -> Iterator[InfluxClient]:
    """An admin client on a fresh database, dropped afterwards."""
    db = f"lt_init_{uuid.uuid4().hex[:10]}"
    c = InfluxClient(url=influxd.url, database=db, username=influxd.user, password=influxd.password)
    yield c
    c.query(f"DROP DATABASE {db}", database="")


def _init(client: InfluxClient, influxd) -> list[str]:
    return init_influx(client, admin_user=influxd.user, admin_password=influxd.password)


def _rps(client: InfluxClient) -> dict[str, tuple[str, str, bool]]:
    rows = client.rows(f"SHOW RETENTION POLICIES ON {client.database}", database="")
    return {r["name"]: (r["duration"], r["shardGroupDuration"], r["default"]) for r in rows}


def _cqs(client: InfluxClient) -> dict[str, str]:
    for s in client.series("SHOW CONTINUOUS QUERIES", database=""):
        if s["name"] == client.database:
            return {name: query for name, query in s.get("values", [])}
    return {}


def _run_cq_over(client: InfluxClient, cq_text: str, start: datetime, end: datetime) -> None:
    """Run the SELECT ... INTO of a continuous query over [start, end), as a backfill would."""
    m = re.search(r"\bBEGIN (SELECT .*) END$", cq_text)
    assert m, cq_text
    select = m.group(1)
    where = f"WHERE time >= '{start.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}' AND time < '{end.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}'"
    client.query(select.replace(" GROUP BY ", f" {where} GROUP BY ", 1))


def _ns(t: datetime) -> int:
    return int(t.timestamp()) * 1_000_000_000


# --------------------------------------------------------------------------- files


def test_statement_splitting_handles_comments_quotes_and_regexes() -> None:
    text = (
        "-- header; not a statement\n"
        "CREATE DATABASE x; -- trailing\n"
        "CREATE RETENTION POLICY \"a;b\" ON x DURATION 1d REPLICATION 1;\n"
        "SELECT a FROM x.raw./^(c|d;e)$/ WHERE t = 'it\\'s -- not a comment;'\n"
        "  GROUP BY time(1m)"
    )
    stmts = split_statements(text)
    assert [line for line, _ in stmts] == [2, 3, 4]
    assert stmts[0][1] == "CREATE DATABASE x"
    assert stmts[1][1] == 'CREATE RETENTION POLICY "a;b" ON x DURATION 1d REPLICATION 1'
    assert stmts[2][1].startswith("SELECT a FROM x.raw./^(c|d;e)$/ WHERE t = 'it\\'s -- not a comment;'")
    assert stmts[2][1].endswith("GROUP BY time(1m)")


def test_files_declare_every_level_for_every_carrier() -> None:
    statements = read_statements(DEFAULT_FILES_DIR, "lingtan")
    cqs = {}
    for s in statements:
        m = re.match(r"CREATE CONTINUOUS QUERY (\S+) ON lingtan ", s.oneline)
        if m:
            cqs[m.group(1)] = s.oneline
    assert set(cqs) == {f"lingtan_{g}_{lvl}" for g in MEASUREMENT_GROUPS for lvl in LEVELS}
    carriers = "|".join(sorted(c.value for c in Carrier))
    for lvl in LEVELS:
        assert f"/^({carriers})$/" in cqs[f"lingtan_carriers_{lvl}"], "carrier regex out of sync with Carrier"
    for group in MEASUREMENT_GROUPS:
        assert "TZ('Asia/Shanghai')" in cqs[f"lingtan_{group}_1d"]
        for lvl in LEVELS:
            assert f'INTO lingtan."{lvl}".' in cqs[f"lingtan_{group}_{lvl}"]
            assert re.search(rf"GROUP BY time\({lvl}\), \*", cqs[f"lingtan_{group}_{lvl}"])
    assert not any("{db}" in s.text for s in statements)


def test_db_placeholder_is_quoted_when_needed() -> None:
    statements = read_statements(DEFAULT_FILES_DIR, "park-1/energy")
    assert statements[0].text == 'CREATE DATABASE "park-1/energy"'


# --------------------------------------------------------------------------- server


def test_init_twice_is_idempotent(client: InfluxClient, influxd) -> None:
    first = _init(client, influxd)
    assert f"database {client.database}: created" in first
    assert sum("continuous query" in line and line.endswith(": created") for line in first) == 12
    rps, cqs = _rps(client), _cqs(client)

    second = _init(client, influxd)
    object_lines = [line for line in second if not line.startswith("server:")]
    assert object_lines and all(line.split(": ", 1)[1].startswith("unchanged") for line in object_lines), second
    assert _rps(client) == rps
    assert _cqs(client) == cqs


def test_retention_policies_and_continuous_queries_exist(client: InfluxClient, influxd) -> None:
    _init(client, influxd)
    rps = _rps(client)
    for name, expected in EXPECTED_RPS.items():
        assert rps[name] == expected, name
    assert [n for n, (_, _, default) in rps.items() if default] == ["raw"]

    cqs = _cqs(client)
    declared = {
        m.group(1): s.oneline
        for s in read_statements(DEFAULT_FILES_DIR, client.database)
        if (m := re.match(r"CREATE CONTINUOUS QUERY (\S+) ", s.oneline))
    }
    assert set(cqs) == set(declared)
    for name, text in declared.items():
        assert normalize_space(cqs[name]) == text


def test_init_restores_drifted_policies_and_queries(client: InfluxClient, influxd) -> None:
    _init(client, influxd)
    db = client.database
    client.query(f"ALTER RETENTION POLICY raw ON {db} DURATION 30d", database="")
    client.query(f'ALTER RETENTION POLICY "1h" ON {db} DEFAULT', database="")
    client.query(f"DROP CONTINUOUS QUERY lingtan_carriers_15m ON {db}", database="")
    client.query(f"DROP CONTINUOUS QUERY lingtan_data_quality_1h ON {db}", database="")
    client.query(
        f"CREATE CONTINUOUS QUERY lingtan_data_quality_1h ON {db} BEGIN SELECT sum(count) AS count "
        f'INTO {db}."1h".data_quality FROM {db}."15m".data_quality GROUP BY time(1h) END', database=""
    )
    client.query(
        f"CREATE CONTINUOUS QUERY lingtan_obsolete ON {db} BEGIN SELECT count(rate) AS n "
        f'INTO {db}."1h".obsolete FROM {db}.raw.electricity GROUP BY time(1h) END', database=""
    )
    client.query(
        f"CREATE CONTINUOUS QUERY someone_elses ON {db} BEGIN SELECT count(rate) AS n "
        f'INTO {db}."1h".other FROM {db}.raw.electricity GROUP BY time(1h) END', database=""
    )

    log = _init(client, influxd)
    assert any(line.startswith("retention policy raw: altered") for line in log), log
    assert any(line.startswith("retention policy 1h: unchanged") for line in log)  # raw took DEFAULT back
    assert "continuous query lingtan_carriers_15m: created" in log
    assert "continuous query lingtan_data_quality_1h: re-created (definition changed)" in log
    assert "continuous query lingtan_obsolete: dropped (no longer declared)" in log
    rps = _rps(client)
    for name, expected in EXPECTED_RPS.items():
        assert rps[name] == expected, name
    cqs = _cqs(client)
    assert "lingtan_obsolete" not in cqs and "someone_elses" in cqs
    assert "GROUP BY time(1h), *" in cqs["lingtan_data_quality_1h"]


def test_continuous_queries_downsample_to_shanghai_days(client: InfluxClient, influxd) -> None:
    _init(client, influxd)
    cqs = _cqs(client)
    # a whole Asia/Shanghai day five days ago, plus two hours either side
    day = datetime.now(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=5)
    t0, t1 = day - timedelta(hours=2), day + timedelta(days=1, hours=2)
    tags = "park=p,enterprise=e,unit=u,meter=m,carrier=electricity,protocol=mqtt"
    lines, samples = [], []
    t, k = t0, 0
    while t < t1:  # one reading every 5 minutes: 3 per 15-min bucket, 12 per hour
        rate = 100.0 + (k * 37) % 50  # varied, min 100, max 149
        total = 1000.0 + 2.5 * k
        lines.append(f"electricity,{tags},point=m.rate,role=pv rate={rate!r} {_ns(t)}")
        lines.append(f"electricity,{tags},point=m.total,role=pv total={total!r} {_ns(t)}")
        lines.append(f"collector_stats,park=p,collector=c1,protocol=mqtt points_in={k}i,points_written={k}i,"
                     f"dq_events=0i,queue_depth={k % 7}i,buffer_bytes=0i,lag_ms={float(k % 5)!r},write_errors=0i {_ns(t)}")
        samples.append((t, rate, total, k))
        t += timedelta(minutes=5)
        k += 1
    for minute in (30, 90, 600):  # three data-quality events inside the day
        lines.append(f"data_quality,park=p,enterprise=e,meter=m,point=m.rate,protocol=mqtt,device=d,reason=stale "
                     f"count=1i,detail=\"no update\" {_ns(day + timedelta(minutes=minute))}")
    client.write_lines(lines)

    start, end = day - timedelta(days=1), day + timedelta(days=2)
    for lvl in LEVELS:
        for group in MEASUREMENT_GROUPS:
            _run_cq_over(client, cqs[f"lingtan_{group}_{lvl}"], start, end)

    in_day = [s for s in samples if day <= s[0] < day + timedelta(days=1)]
    q = f'SELECT * FROM {client.database}."1d".electricity WHERE time >= \'{day.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}\' ' \
        f"AND time < '{(day + timedelta(days=1)).astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}' GROUP BY point"
    rows = {r["point"]: r for r in client.rows(q, epoch="s")}
    expected_bucket = int(day.timestamp())
    assert expected_bucket % 86400 == 16 * 3600  # 00:00 Asia/Shanghai is 16:00 UTC the day before
    assert rows["m.total"]["time"] == expected_bucket
    assert rows["m.total"]["total"] == in_day[-1][2]
    assert rows["m.total"]["rate"] is None
    assert rows["m.rate"]["time"] == expected_bucket
    assert rows["m.rate"]["rate_min"] == min(s[1] for s in in_day)
    assert rows["m.rate"]["rate_max"] == max(s[1] for s in in_day)
    assert rows["m.rate"]["rate"] == pytest.approx(mean(s[1] for s in in_day), rel=1e-12)
    assert rows["m.rate"]["total"] is None

    all_days = client.rows(f'SELECT * FROM {client.database}."1d".electricity GROUP BY point', epoch="s")
    assert len(all_days) == 6  # two points x (partial day before, the day, partial day after)
    assert all(r["time"] % 86400 == 16 * 3600 for r in all_days)
    # the partial day before holds the two hours before Shanghai midnight only
    before = [s for s in samples if s[0] < day]
    prev = {r["point"]: r for r in all_days if r["time"] == expected_bucket - 86400}
    assert prev["m.total"]["total"] == before[-1][2]

    dq = client.rows(f'SELECT * FROM {client.database}."1d".data_quality', epoch="s")
    assert [(r["time"], r["count"], r["reason"], r["point"]) for r in dq] == [(expected_bucket, 3, "stale", "m.rate")]

    stats = {r["time"]: r for r in client.rows(f'SELECT * FROM {client.database}."1d".collector_stats', epoch="s")}
    day_stats = stats[expected_bucket]
    assert day_stats["points_in"] == in_day[-1][3]
    assert day_stats["queue_depth_max"] == max(s[3] % 7 for s in in_day)
    assert day_stats["lag_ms_max"] == 4.0
    assert day_stats["collector"] == "c1"

    hours = client.rows(f'SELECT * FROM {client.database}."1h".electricity WHERE point = \'m.rate\'', epoch="s")
    assert len(hours) == 28 and all(r["time"] % 3600 == 0 for r in hours)
