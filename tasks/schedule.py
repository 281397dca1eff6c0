"""The beat schedule, built from the settings registry.

Intervals that users tune (heartbeats, offline detection, cleanup age) live in
the registry; the ticks here are derived from them so that, e.g., stale jobs are
reaped within one offline period. Rescans run on a one-minute tick that starts
each library's scan when its own interval has passed.
"""

from __future__ import annotations

from typing import Any

from codecshift import registry
from tasks import names


def build_schedule(values: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Each entry expires after its own interval: behind a long scan, a stale tick is
    dropped rather than run late next to a fresh one."""
    schedule = _entries(values or registry.defaults())
    for entry in schedule.values():
        entry["options"] = {"expires": max(1.0, float(entry["schedule"]))}
    return schedule


def _entries(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    offline = max(3, int(values["node_offline_after_seconds"]))
    cleanup_hours = max(1, int(values["cleanup_age_hours"]))
    return {
        "dispatch": {"task": names.DISPATCH, "schedule": float(values["dispatch_interval_seconds"])},
        "reap-stale": {"task": names.REAP_STALE, "schedule": float(max(2, offline // 3))},
        "reconcile-journals": {"task": names.RECONCILE, "schedule": float(max(5, offline))},
        "cleanup": {"task": names.CLEANUP, "schedule": float(min(3600, cleanup_hours * 900))},
        "prune-history": {"task": names.PRUNE_HISTORY, "schedule": 6 * 3600.0},
        "rescan-due": {"task": names.RESCAN_DUE, "schedule": 60.0},
        "watch-background-work": {"task": names.WATCH, "schedule": 60.0},
    }
