"""The Chinese working-day calendar: weekends, public holidays and make-up workdays (调休).

One calendar for the whole platform: the simulator's shifts, the base-load KPIs, the weather
model and the load forecasts all ask here. The days follow the State Council's annual holiday
notices (国务院办公厅关于部分节假日安排的通知) as tabulated by the ``chinesecalendar`` package; for a
year it has no notice for yet (it raises NotImplementedError) Monday to Friday are working days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import pandas as pd


@lru_cache(maxsize=8192)
def is_workday_date(day: dt.date) -> bool:
    """Whether the local date ``day`` is a Chinese working day."""
    import chinese_calendar

    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:  # a year without a notice in the package: weekdays only
        return day.weekday() < 5


def is_workday(days: pd.DatetimeIndex | Iterable[dt.date | dt.datetime | pd.Timestamp]) -> np.ndarray:
    """Whether each local day (timestamps: their local date) is a Chinese working day [bool]."""
    return np.fromiter((is_workday_date(_date(d)) for d in days), dtype=bool)


def _date(value: dt.date | dt.datetime | pd.Timestamp) -> dt.date:
    if isinstance(value, dt.datetime):  # pd.Timestamp is a datetime
        return dt.date(value.year, value.month, value.day)
    return value
