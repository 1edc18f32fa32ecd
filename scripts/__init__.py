"""Operator scripts: `voicegate ops <name>` or `python -m scripts.<module>` (dashes become underscores).

Every script is a dry run unless given `--apply`, prints a summary table (or `--json`), and exits 0
when it found nothing wrong (or fixed all of it), 1 when problems remain, 2 on a usage or
configuration error, 3 when the run could not finish (database, Storage or a provider unreachable).
"""

SCRIPT_NAMES = (
    "status",
    "recover-stale-attempts",
    "repair-voice-mirror",
    "purge-expired-samples",
    "sweep-orphan-objects",
    "replay-dead-letters",
    "reconcile-provider-voices",
    "migrate-voices",
    "erase-user",
    "erasures",
    "usage",
    "voice-holds",
    "reprint-voiceprints",
)
