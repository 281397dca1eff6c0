"""Counting the rows of a filtered query for paged lists."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func
from sqlalchemy.orm import Session


def count_rows(session: Session, stmt: Select[Any]) -> int:
    """COUNT(*) over the query's FROM and WHERE, without a subquery or ORDER BY."""
    return session.scalar(stmt.with_only_columns(func.count(), maintain_column_froms=True).order_by(None)) or 0
