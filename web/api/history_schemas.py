"""Queries of the history, stats and failures endpoints."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from web.api.schemas import Page, Strict


class DateRange(Strict):
    since: date | None = Field(None, description="First UTC day included (YYYY-MM-DD)")
    until: date | None = Field(None, description="Last UTC day included (YYYY-MM-DD)")

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
    days: int | None = Field(None, ge=1, le=36_500, description="The last N UTC days, today included; "
                             "ignored when since is given. Neither: all time")
    bucket: Literal["auto", "day", "week", "month"] = "auto"


class FailuresQuery(Page):
    library_id: int | None = Field(None, ge=1)
    node: str | None = Field(None, max_length=200)
    q: str | None = Field(None, max_length=500, description="Substring of the path")
    lines: int = Field(40, ge=0, le=1000, description="Lines of each log tail")
