"""Queries of the history, stats and failures endpoints."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from codecshift.models import utcnow
from web.api.schemas import Page, Strict

# Days outside these bounds cannot hold a transcode and would only make huge series (or
# overflow date arithmetic at 9999-12-31): they are refused with a 400 naming the field.
FIRST_DAY = date(1970, 1, 1)


def last_day() -> date:
    """Tomorrow (UTC): a clock a little ahead, or a day boundary, never refuses today."""
    return utcnow().date() + timedelta(days=1)


class DateRange(Strict):
    since: date | None = Field(None, description="First UTC day included (YYYY-MM-DD), "
                               "1970-01-01 to tomorrow")
    until: date | None = Field(None, description="Last UTC day included (YYYY-MM-DD), 1970-01-01 to tomorrow")

    @field_validator("since", "until")
    @classmethod
    def _bounded(cls, value: date | None) -> date | None:
        if value is not None and not FIRST_DAY <= value <= last_day():
            raise ValueError(f"must be between {FIRST_DAY.isoformat()} and {last_day().isoformat()}")
        return value

    @field_validator("until")
    @classmethod
    def _ordered(cls, value: date | None, info: ValidationInfo) -> date | None:
        since = info.data.get("since")
        if value is not None and since is not None and since > value:
            raise ValueError("must not be before since")
        return value


class HistoryQuery(Page, DateRange):
    node: str | None = Field(None, max_length=200)
    encoder: str | None = Field(None, max_length=32)
    source_codec: str | None = Field(None, max_length=32)
    library_id: int | None = Field(None, ge=1)
    q: str | None = Field(None, max_length=500, description="Substring of the path")


class StatsQuery(DateRange):
    days: int | None = Field(None, ge=1, le=36_500, description="The last N UTC days, today included "
                             "(from 1970-01-01 at most); ignored when since is given. Neither: all time")
    bucket: Literal["auto", "day", "week", "month"] = Field(
        "auto", description="Series bucket; a range that would need more than 1000 buckets of the size "
        "asked for gets the next coarser one (range.bucket says which)")


class FailuresQuery(Page):
    library_id: int | None = Field(None, ge=1)
    node: str | None = Field(None, max_length=200)
    q: str | None = Field(None, max_length=500, description="Substring of the path")
    lines: int = Field(40, ge=0, le=1000, description="Lines of each log tail")
