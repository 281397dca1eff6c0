"""Explicit, stable task names: messages in a broker outlive any refactoring."""

TRANSCODE = "codecshift.transcode"
HEALTHCHECK = "codecshift.healthcheck"
SCAN_LIBRARY = "codecshift.scan_library"
DISPATCH = "codecshift.dispatch"
REAP_STALE = "codecshift.maintenance.reap_stale"
CLEANUP = "codecshift.maintenance.cleanup"
RECONCILE = "codecshift.maintenance.reconcile_journals"
PRUNE_HISTORY = "codecshift.maintenance.prune_history"
RESCAN_DUE = "codecshift.maintenance.rescan_due"
WATCH = "codecshift.maintenance.watch"
PLEX_REFRESH = "codecshift.plex_refresh"
PLEX_INGEST = "codecshift.plex_ingest"
NOTIFY = "codecshift.notify"
BULK_OPERATION = "codecshift.bulk_operation"

CONTROL_TASK_QUEUES = {
    SCAN_LIBRARY: "scan",
    DISPATCH: "control",
    PLEX_REFRESH: "control",
    PLEX_INGEST: "control",
    NOTIFY: "control",
    BULK_OPERATION: "control",
    REAP_STALE: "maintenance",
    CLEANUP: "maintenance",
    RECONCILE: "maintenance",
    PRUNE_HISTORY: "maintenance",
    RESCAN_DUE: "maintenance",
    WATCH: "maintenance",
}
