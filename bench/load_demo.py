"""Time the demo load: about 1,000,000 enhancement_history rows into a fresh database.

    python bench/load_demo.py [--days 60] [--tickets-per-day-scale 16] [--seed 42]

Creates a throwaway database with demo.dbsetup (schema, roles, migrations: not timed), loads
all six tables with demo.generate as `make demo` does, prints the seconds, and drops the
database again. Needs the private stack's environment (`source .stack/env`).
"""

from __future__ import annotations

import argparse
import os

import psycopg

from demo import dbsetup
from demo.generate import generate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=float, default=60)
    parser.add_argument("--tickets-per-day-scale", type=float, default=16)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    name = f"bench_demo_{os.getpid()}"
    dbsetup.prepare(name)
    try:
        summary = generate(
            psycopg.conninfo.make_conninfo(dbname=name),
            days=args.days,
            scale=args.tickets_per_day_scale,
            seed=args.seed,
        )
    finally:
        dbsetup.drop_database(name)
    rows = summary.counts["enhancement_history"]
    others = sum(summary.counts.values()) - rows
    print(
        f"loaded {rows:,} enhancement_history rows (+ {others:,} rows in the other five"
        f" tables) in {summary.seconds:.1f} s on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
