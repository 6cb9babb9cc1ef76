"""``python -m bench.run``: the stepboard benchmark (``make bench`` / ``make bench-quick``).

Loads a generated social graph with the bulk loader, starts the run's own services (own
ports, topics, consumer group, Redis namespaces), measures every figure of
``docs/performance.md`` beside its baseline in the same run, writes
``bench/results/<date>-<scale>.json``, a markdown table and PNG plots, then stops what it
started and drops its topics and Redis keys (the bench databases are kept for re-runs).
"""

import argparse
import json
import signal
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import config, dataset, library, naive, past, phases, report_writer
from bench.config import RESULTS, Context, scale_with
from bench.procs import Processes
from bench.services import create_topics, delete_topics, start_servers

ALL_PHASES = ("backlog", "ingest", "consumer", "memory", "ranking", "freshness", "naive",
              "storm", "rate", "library", "windows", "archive", "history", "likes", "left", "rss")
PAST_PHASES = ("windows", "archive", "history")  # those that need the past days seeded


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line: a preset and any scale field overridden."""
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", choices=sorted(config.PRESETS), default="quick")
    p.add_argument("--users", type=int, help="users in the graph (and on the board)")
    p.add_argument("--avg-friends", type=float, help="average friend count")
    p.add_argument("--skew", type=float, help="sigma of the log-normal friend counts")
    p.add_argument("--tail-users", type=int, help="users with --tail-friends picks")
    p.add_argument("--tail-friends", type=int, help="picks of each tail user")
    p.add_argument("--hot-friends", type=int, help="friends of the appended hot user")
    p.add_argument("--reports-per-user", type=int, help="reports per user in the backlog")
    p.add_argument("--duration", type=float, dest="duration_s", help="seconds per load phase")
    p.add_argument("--freshness-seconds", type=float, dest="freshness_s")
    p.add_argument("--storm-seconds", type=float, dest="storm_s")
    p.add_argument("--freshness-rate", type=int, help="background reports/s during freshness")
    p.add_argument("--consumers", type=int, help="consumer processes")
    p.add_argument("--consumer-max-rate", type=int, dest="consumer_max_rate",
                   help="reports/s per consumer in the rate phase's limited run")
    p.add_argument("--phases", default=",".join(ALL_PHASES),
                   help=f"comma-separated subset of {','.join(ALL_PHASES)}")
    p.add_argument("--reload", action="store_true", help="reload the graph even if loaded")
    p.add_argument("--out", help="results file (default bench/results/<date>-<scale>.json)")
    p.add_argument("--no-plots", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str]) -> dict:
    """Runs the bench; returns the results dict."""
    args = parse_args(argv)
    fields = {k: getattr(args, k) for k in (
        "users", "avg_friends", "skew", "tail_users", "tail_friends", "hot_friends",
        "reports_per_user", "duration_s", "freshness_s", "storm_s", "freshness_rate",
        "consumers", "consumer_max_rate")}
    scale = scale_with(args.scale, **fields)
    if scale.users != config.PRESETS[args.scale].users and args.scale != "tiny":
        scale = scale_with(args.scale, **fields, name=f"{args.scale}-{scale.users}")
    wanted = [p for p in args.phases.split(",") if p]
    ctx = Context(scale)
    procs = Processes(ctx.run_id)
    results: dict = {"started": datetime.now(UTC).isoformat(timespec="seconds"),
                     "run": ctx.describe(), "machine": report_writer.machine(), "phases": {},
                     "errors": {}}

    def phase(name: str, fn, *a):
        print(f"== {name}", flush=True)
        started = time.monotonic()
        try:
            results["phases"][name] = fn(*a)
        except Exception as error:  # a failed phase is reported, the rest still runs
            traceback.print_exc()
            results["errors"][name] = f"{type(error).__name__}: {error}"
        print(f"   {name}: {time.monotonic() - started:.1f} s", flush=True)

    # a run ended by SIGTERM still stops its processes and drops its topics and keys
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        print(f"== graph ({scale.users:,} users)", flush=True)
        graph = dataset.ensure_graph(ctx, force=args.reload)
        results["graph"] = graph.as_dict()
        past.reset_archive(ctx)
        create_topics(ctx)
        start_servers(ctx, procs)
        state = phases.State(ctx, procs, graph)
        results["phases"]["users"] = phases.pick_users(state)
        if "backlog" in wanted:
            phase("backlog", phases.backlog, state)
        if "ingest" in wanted:
            phase("ingest", phases.ingest, state)
        if "consumer" in wanted:
            phase("consumer", phases.consumer, state)
        if "memory" in wanted:
            phase("memory", phases.memory, state)
        if "ranking" in wanted:
            phase("precompute", phases.precompute_hot, state)
            phase("ranking", phases.ranking, state)
        if "freshness" in wanted:
            phase("freshness", phases.freshness, state)
        if "naive" in wanted or "storm" in wanted:
            phase("naive_setup", naive.setup, state)
        if "naive" in wanted:
            phase("naive", naive.idle, state)
        if "storm" in wanted:
            phase("storm", phases.storm, state)
        if "rate" in wanted:
            phase("rate", phases.apply_rate, state)
        if "library" in wanted:
            friend_lists = dataset.friend_lists(
                ctx, [user for user, _ in state.users_at.get("200", [])[:20]])
            rows = getattr(state, "naive_rows", None) or naive.board_rows(state)
            phase("library", library.run, state, rows, friend_lists)
        if any(name in wanted for name in PAST_PHASES):
            phase("past_seed", past.seed, state)
        if "windows" in wanted:
            phase("windows", phases.windows, state)
        if "archive" in wanted:
            phase("archive", past.archive, state)
        if "history" in wanted:
            phase("archive_older", past.archive_older, state)
            phase("history", phases.history, state)
        if "likes" in wanted:
            phase("likes", phases.likes, state)
            phase("like_calls", phases.like_calls, state)
        if "left" in wanted:
            phase("left_rankings", phases.left_rankings, state)
        if "rss" in wanted:
            phase("rss", phases.rss, state)
            phase("precompute_rss", phases.precompute_rss, state)
        results["samples"] = report_writer.cdf_points(state.samples)
    finally:
        procs.stop_all()
        delete_topics(ctx)
        _drop_keys(ctx)
    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    stem = f"{datetime.now(UTC).date().isoformat()}-{scale.name}"
    out = args.out or str(RESULTS / f"{stem}.json")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as file:
        json.dump(results, file, indent=1, default=float)
    table = report_writer.markdown(results)
    with open(out.removesuffix(".json") + ".md", "w") as file:
        file.write(table)
    if not args.no_plots:
        report_writer.plots(results, out.removesuffix(".json"))
    print(table)
    print(f"results: {out}")
    return results


def _drop_keys(ctx: Context) -> None:
    from common.redis_clients import RedisSettings, create_redis
    client = create_redis(RedisSettings.from_env(ctx.env))
    try:
        for pattern in (f"{ctx.namespace}:*", f"{ctx.social_namespace}:*"):
            batch = []
            for key in client.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    client.delete(*batch)
                    batch = []
            if batch:
                client.delete(*batch)
    finally:
        client.close()


if __name__ == "__main__":
    main(sys.argv[1:])
