"""The cron command: python -m services.dbhealth snapshot (e.g. every 15 minutes)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from services.config import rules
from services.db import job_lock
from services.dbhealth.statements import SNAPSHOT_LOCK, prune_snapshots, take_snapshot
from services.errors import DashboardError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.dbhealth", description="Database health snapshots (for cron)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "snapshot",
        help="store a pg_stat_statements snapshot and delete those older than"
        " [db_health] snapshot_keep_days",
    )
    parser.parse_args(argv)
    try:
        with job_lock(SNAPSHOT_LOCK) as ours:
            if not ours:
                print("snapshot skipped: another run is taking one")
                return 0
            snapshot_id = take_snapshot("cron")
            deleted = prune_snapshots(rules("db_health")["snapshot_keep_days"])
    except DashboardError as exc:
        print(f"snapshot not taken: {exc}", file=sys.stderr)
        return 1
    print(f"snapshot {snapshot_id} taken; {deleted} old snapshot(s) deleted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
