"""Where a view's server time goes: py-spy samples the dashboard server during cold runs.

    python bench/profile.py [--database aiagents_demo] [--runs 3] queues feedback "?range=30d"

Each argument is a page's url path, optionally with a query ("" or "?range=30d": tenant
health). Per page: caches cleared, the page run `--runs` times over the websocket
(bench/client.py) while py-spy records the server; prints the share of samples spent in each
library group and in the dashboard's own functions (the innermost frame of views/, services/,
ui/ on each sample's stack). Needs py-spy (pip install py-spy) and ptrace rights.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402
from bench.client import Session, sign_in  # noqa: E402

GROUPS = {  # the first group (in this order) whose marker a sample's stack holds
    "SQL (psycopg, sqlalchemy)": ("psycopg/", "sqlalchemy/"),
    "Redis": ("redis/",),
    "Prometheus (requests)": ("requests/", "urllib3/"),
    "plotly figures": ("plotly/",),
    "Arrow / dataframe serialisation": ("pyarrow/", "dataframe_util", "arrow"),
    "pandas": ("pandas/",),
    "numpy / scipy": ("numpy/", "scipy/"),
}
OWN = re.compile(r"\((views|services|ui)/")  # py-spy names the project's files relatively
PLUMBING = ("services/db.py", "ui/common.py", "services/timing.py")  # gateway, cache, timing


def profile(server: harness.Server, cookies: dict[str, str], target: str, runs: int) -> str:
    page, _, query = target.partition("?")
    params = dict(pair.split("=", 1) for pair in query.split("&") if pair)
    out = Path(tempfile.mkdtemp(prefix="bench-profile-")) / "stacks.txt"
    assert server.process
    spy = subprocess.Popen(
        [shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"), "record"]
        + ["--pid", str(server.process.pid), "--format", "raw", "--output", str(out)]
        + ["--rate", "200", "--idle"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with Session(server.url, cookies) as session:
        session.run(page, params)  # the page's imports, once
        for _ in range(runs):
            session.clear_caches()
            session.run(page, params)
    spy.send_signal(signal.SIGINT)
    spy.wait(timeout=30)
    return summarise(target, out.read_text().splitlines())


def summarise(target: str, lines: list[str]) -> str:
    groups: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if "ScriptRunner" not in stack and "exec_func_with_error_handling" not in stack:
            continue  # not the script thread (the event loop, idle threads)
        samples = int(count)
        total += samples
        frames = stack.split(";")
        group = next((g for g, marks in GROUPS.items() if any(m in stack for m in marks)), None)
        groups[group or "other (Streamlit, Python)"] += samples
        mine = [f for f in frames if OWN.search(f) and not any(p in f for p in PLUMBING)]
        if mine:
            function, _, where = mine[-1].partition(" (")
            own[f"{function} ({where.rsplit(':', 1)[0]})"] += samples
    lines_out = [f"### {target or '(default page)'}: {total} samples of the script thread", ""]
    lines_out += [f"- {name}: {n / total:.0%}" for name, n in groups.most_common()] if total else []
    lines_out += ["", "Innermost own frame:"]
    lines_out += [f"- {name}: {n / total:.0%}" for name, n in own.most_common(8)] if total else []
    return "\n".join(lines_out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    harness.add_arguments(parser, harness.ADMIN)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("pages", nargs="+")
    args = parser.parse_args()
    env = harness.stack_env(args.database)
    idp = harness.identity(args, env)
    with harness.running_server(env, idp) as server:
        cookies = sign_in(server.url, idp.email, idp.password)
        for target in args.pages:
            print(profile(server, cookies, target, args.runs), "\n", flush=True)


if __name__ == "__main__":
    main()
