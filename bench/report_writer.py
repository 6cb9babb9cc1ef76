"""Results → the markdown table (figures, baselines, ratios, targets) and PNG plots."""

import os
import platform

import numpy as np

from bench.config import (
    COLD,
    DAY_BESIDE_WEEK,
    ECHO_FLOOR,
    FRIEND_CHECKS,
    HISTORY,
    HISTORY_P99_MS,
    LIKE_CALLS,
    LIKED_FRIENDS,
    LIKES_P50_RATIO,
    LIST_FRIENDS,
    PLAIN_FRIENDS,
    QUESTIONS,
    RANK_BESIDE_ECHO,
    RANK_NONE_LEFT,
    RANK_SOME_LEFT,
    READERS,
    SATURATED,
    TOP_WITH_GHZ,
    WEEK_FRIENDS,
)
from common.record_format import REPORTS_PER_RECORD


def machine() -> dict:
    """Where the run ran."""
    mem = 0
    try:
        with open("/proc/meminfo") as file:
            mem = int(file.readline().split()[1]) // 1024
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "mem_mib": mem, "python": platform.python_version(),
            "platform": platform.platform()}


def cdf_points(samples: dict) -> dict:
    """Each latency sample reduced to 101 quantiles (ms) and its size, for the file."""
    return {name: {"n": int(a.size), "quantiles_ms": [round(float(x), 3) for x in
                                                     np.percentile(a, np.arange(101))]}
            for name, a in samples.items() if a.size}


def _get(results: dict, *path, default=None):
    node = results.get("phases", {})
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def _fmt(value, digits=1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value >= 1000:
        return f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}" if isinstance(value, float) else str(value)


def _ratio(a, b):
    return round(a / b, 2) if a is not None and b else None


def targets(results: dict) -> list[tuple[str, str, bool | None]]:
    """``(target, measured figure, met)`` for every target of the issue."""
    g = lambda *p: _get(results, *p)  # noqa: E731
    rows = []
    rs, echo = g("ingest", "report_steps_ghz", "rps"), g("ingest", "echo_ghz", "rps")
    r = _ratio(rs, echo)
    rows.append(("ReportSteps ≥ 0.6x echo throughput",
                 f"{_fmt(rs)} vs {_fmt(echo)} RPS = {_fmt(r, 2)}x",
                 None if r is None else r >= 0.6))
    batch = g("ingest", "report_steps_batch", "items_per_s")
    raw = g("backlog", "acked_per_s")
    rows.append(("ReportStepsBatch ≥ 100k acked reports/s per ingest process",
                 f"{_fmt(batch)}/s ({_fmt(_ratio(batch, raw), 2)}x a raw producer loop of one "
                 f"record per report, {_fmt(raw)}/s)",
                 None if batch is None else batch >= 100_000))
    single, zadd = g("consumer", "single", "reports_per_s"), g("consumer", "zadd_pipelined",
                                                                 "zadd_per_s")
    batched = g("consumer", "batched", "reports_per_s")
    slower = None if single is None or batched is None else min(single, batched)
    r = _ratio(slower, zadd)
    rows.append(("consumer ≥ 100k reports/s and ≥ 0.4x pipelined ZADD",
                 f"{_fmt(single)}/s at 1 report per record, {_fmt(batched)}/s at "
                 f"{REPORTS_PER_RECORD:,} per record, vs ZADD {_fmt(zadd)}/s: the slower "
                 f"{_fmt(r, 2)}x",
                 None if slower is None else slower >= 100_000 and (r or 0) >= 0.4))
    fr, rate = g("freshness", "p99_ms"), g("freshness", "background_reports_per_s")
    rows.append(("freshness p99 ≤ 1 s at 5k reports/s",
                 f"p50 {_fmt(g('freshness', 'p50_ms'))} ms, p99 {_fmt(fr)} ms at {_fmt(rate)}/s",
                 None if fr is None else fr <= 1000 and (rate or 0) >= 4500))
    f200 = g("ranking", "GetFriendRanking 200") or {}
    # the rank process's most RPS over both loads it got (16 callers is not always more)
    most, most_callers = max(
        ((r["rps"], r["callers"]) for r in (f200, g("ranking", SATURATED) or {}) if "rps" in r),
        default=(None, None))
    floor = g("ranking", ECHO_FLOOR) or {}
    floor_text = (f"; a bare gRPC echo at the same {floor['callers']} callers: "
                  f"{_fmt(floor['rps'])} RPS, p50 {_fmt(floor['p50_ms'], 2)} ms, "
                  f"p99 {_fmt(floor['p99_ms'], 2)} ms" if floor else "")
    rows.append(("friend ranking, 200 friends: p50 ≤ 3 ms and ≥ 1,000 RPS per rank process",
                 f"p50 {_fmt(f200.get('p50_ms'), 2)} ms ({f200.get('callers')} callers), "
                 f"{_fmt(most)} RPS at most ({most_callers} callers){floor_text}",
                 None if f200.get("p50_ms") is None or most is None
                 else f200["p50_ms"] <= 3 and most >= 1000))
    f5k = g("ranking", "GetFriendRanking 5000") or {}
    rows.append(("friend ranking, 5,000 friends: p99 ≤ 60 ms",
                 f"p99 {_fmt(f5k.get('p99_ms'), 2)} ms", None if f5k.get("p99_ms") is None
                 else f5k["p99_ms"] <= 60))
    hot = g("ranking", "GetFriendRanking hot") or {}
    rows.append(("friend ranking, hot user (1M friends): p99 ≤ 10 ms",
                 f"p99 {_fmt(hot.get('p99_ms'), 2)} ms", None if hot.get("p99_ms") is None
                 else hot["p99_ms"] <= 10))
    gr, sql = g("ranking", "GetGlobalRank", "p50_ms"), g("naive", "global_rank", "p50_ms")
    r = _ratio(sql, gr) if gr else None
    rows.append((f"global rank ≥ 10x faster than SQL COUNT at {_fmt(g('ranking', 'participants'))}"
                 " participants", f"p50 {_fmt(gr, 2)} ms vs SQL {_fmt(sql, 2)} ms = {_fmt(r, 1)}x",
                 None if not r else r >= 10))
    rows.append(_rank_beside_echo(g("ranking", "GetGlobalRank") or {}, floor))
    gt, sqlt = g("ranking", "GetGlobalTop(100)", "p50_ms"), g("naive", "global_top", "p50_ms")
    rows.append(("global top(100) no slower than the SQL index scan",
                 f"p50 {_fmt(gt, 2)} ms vs SQL {_fmt(sqlt, 2)} ms",
                 None if gt is None or sqlt is None else gt <= sqlt))
    sb = g("storm", "stepboard", "friend_ranking_200", "p99_ms")
    nv = g("storm", "naive", "friend_ranking_200", "p99_ms")
    up = g("storm", "naive", "upserts", "rows_per_s")
    ing = g("storm", "stepboard", "ingest", "items_per_s")
    r = _ratio(nv, sb) if sb else None
    rows.append(("friend ranking under the write storm: p99 ≥ 5x better than naive",
                 f"p99 {_fmt(sb, 2)} ms at {_fmt(ing)} reports/s vs naive {_fmt(nv, 2)} ms at "
                 f"{_fmt(up)} upserts/s = {_fmt(r, 1)}x; naive max upsert rate "
                 f"{_fmt(g('naive', 'upsert_max', 'rows_per_s'))}/s; 5x needs p99 ≤ "
                 f"{_fmt(nv and nv / 5, 2)} ms"
                 + (f", a bare gRPC echo's p99 at the same {floor['callers']} callers, idle: "
                    f"{_fmt(floor['p99_ms'], 2)} ms" if floor else ""),
                 None if r is None else r >= 5))
    b = g("memory", "bytes_per_entry")
    rows.append((f"≤ 100 bytes of Redis per (user, day) at {_fmt(g('memory', 'entries'))} entries",
                 f"{_fmt(b)} bytes", None if b is None else b <= 100))
    return rows + _past_targets(g) + _social_targets(g)


def _rank_beside_echo(rank: dict, echo: dict) -> tuple[str, str, bool | None]:
    """GetGlobalRank's RPS against the bare echo's at the same callers, same run."""
    r = _ratio(rank.get("rps"), echo.get("rps")) if rank.get("callers") == echo.get(
        "callers") else None
    return (f"{RANK_BESIDE_ECHO}: ≥ 0.5x",
            f"{_fmt(rank.get('rps'))} vs {_fmt(echo.get('rps'))} RPS at "
            f"{rank.get('callers')} callers = {_fmt(r, 2)}x (p50 "
            f"{_fmt(rank.get('p50_ms'), 2)} vs {_fmt(echo.get('p50_ms'), 2)} ms)",
            None if r is None else r >= 0.5)


def _past_targets(g) -> list[tuple[str, str, bool | None]]:
    """The targets of the week, the archive and the history (issue 22)."""
    rows = []
    week, day = g("windows", WEEK_FRIENDS) or {}, g("windows", DAY_BESIDE_WEEK) or {}
    r = _ratio(week.get("p50_ms"), day.get("p50_ms"))
    rows.append(("friend ranking of a week, 200 friends: p50 ≤ 1.2x the day's, asked beside it",
                 f"p50 {_fmt(week.get('p50_ms'), 2)} ms vs the day's {_fmt(day.get('p50_ms'), 2)}"
                 f" ms at {week.get('callers')} callers = {_fmt(r, 2)}x",
                 None if r is None else r <= 1.2))
    arc, load = g("archive", "archive") or {}, g("archive", "load_data") or {}
    r = _ratio(arc.get("rows_per_s"), load.get("rows_per_s"))
    rows.append((f"day archive ≥ 0.5x LOAD DATA rows/s ({_fmt(arc.get('rows'))} rows of one day)",
                 f"{_fmt(arc.get('rows_per_s'))} vs {_fmt(load.get('rows_per_s'))} rows/s = "
                 f"{_fmt(r, 2)}x", None if r is None else r >= 0.5))
    h = g("history") or {}
    rows.append((f"{HISTORY} ({h.get('archived_days')} archived, the rest live): p99 ≤ "
                 f"{HISTORY_P99_MS} ms", f"p50 {_fmt(h.get('p50_ms'), 2)} ms, p99 "
                 f"{_fmt(h.get('p99_ms'), 2)} ms at {h.get('callers')} callers",
                 None if h.get("p99_ms") is None else h["p99_ms"] <= HISTORY_P99_MS))
    week_b, month_b = g("windows", "week", "bytes_per_entry"), g("windows", "month",
                                                                 "bytes_per_entry")
    rows.append((f"≤ 100 bytes of Redis per (user, window) at "
                 f"{_fmt(g('windows', 'week', 'entries'))} members",
                 f"week {_fmt(week_b)} bytes, month {_fmt(month_b)} bytes",
                 None if week_b is None or month_b is None else max(week_b, month_b) <= 100))
    return rows


def _social_targets(g) -> list[tuple[str, str, bool | None]]:
    """The rows of likes and of users who left the rankings (issue 23). Like calls per
    second, bytes per like and GetGlobalRank with users out have no target: their
    figures are shown (met: -)."""
    liked, plain = g("likes", LIKED_FRIENDS) or {}, g("likes", PLAIN_FRIENDS) or {}
    r = _ratio(liked.get("p50_ms"), plain.get("p50_ms"))
    shown = g("likes", "shown") or {}
    rows = [(f"friend ranking, 200 friends, likes shown: p50 ≤ {LIKES_P50_RATIO}x the same "
             "users' ranking with no likes, asked before it",
             f"p50 {_fmt(liked.get('p50_ms'), 2)} ms vs {_fmt(plain.get('p50_ms'), 2)} ms at "
             f"{liked.get('callers')} callers = {_fmt(r, 2)}x ({_fmt(shown.get('with_likes'))} "
             f"of {_fmt(shown.get('entries'))} entries of the first pages liked, "
             f"{_fmt(shown.get('liked_by_me'))} by the caller)",
             None if r is None else r <= LIKES_P50_RATIO)]
    like, steps = g("like_calls") or {}, g("ingest", "report_steps_ghz", "rps")
    echo = g("ingest", "echo_ghz", "rps")
    check = (like.get(FRIEND_CHECKS) or {}).get("rps")
    rows.append(("Like calls per second per ingest process (no target)",
                 f"{_fmt(like.get('rps'))} RPS, p50 {_fmt(like.get('p50_ms'), 2)} ms: "
                 f"{_fmt(_ratio(like.get('rps'), steps), 2)}x ReportSteps ({_fmt(steps)} RPS), "
                 f"{_fmt(_ratio(like.get('rps'), echo), 2)}x echo ({_fmt(echo)} RPS), ghz; "
                 f"social_svc's CheckFriendship alone {_fmt(check)} RPS", None))
    mem = g("likes", "memory") or {}
    rows.append(("Redis bytes per like (no target)",
                 f"{_fmt(mem.get('bytes_per_like'))} bytes: count hashes "
                 f"{_fmt(mem.get('count_hash_bytes'))} B + likers sets "
                 f"{_fmt(mem.get('likers_set_bytes'))} B over {_fmt(mem.get('likes'))} likes "
                 f"of {_fmt(mem.get('liked_users'))} users", None))
    none, some = g("left_rankings", RANK_NONE_LEFT) or {}, g("left_rankings", RANK_SOME_LEFT) or {}
    rows.append((f"GetGlobalRank with {_fmt(g('left_rankings', 'left'))} users out of the "
                 "rankings (no target)",
                 f"p50 {_fmt(some.get('p50_ms'), 2)} ms vs {_fmt(none.get('p50_ms'), 2)} ms "
                 f"with none out = {_fmt(_ratio(some.get('p50_ms'), none.get('p50_ms')), 2)}x",
                 None))
    return rows


def _social_lines(g) -> list[str]:
    """The table's rows of likes and of users who left the rankings (issue 23)."""
    out = []
    lk = g("likes") or {}
    if lk:
        plain, seed = lk[PLAIN_FRIENDS], lk["seed"]
        out.append(_line(f"{PLAIN_FRIENDS}, {plain['callers']} callers", plain))
        out.append(_line(f"{LIKED_FRIENDS} ({_fmt(seed['likes_sent'])} likes of "
                         f"{_fmt(seed['users_liked'])} of the {_fmt(seed['users_shown'])} users "
                         f"shown, {_fmt(seed['likes_by_callers'])} by the callers), "
                         f"{lk[LIKED_FRIENDS]['callers']} callers", lk[LIKED_FRIENDS],
                         "no likes, before it", plain, key="p50_ms"))
        mem = lk["memory"]
        out.append(f"| Redis bytes per like (count hashes + likers sets) | MEMORY USAGE |"
                   f" {_fmt(mem['bytes_per_like'])} B x {_fmt(mem['likes'])} | - | - | | |")
    like = g("like_calls")
    if like:
        out.append(_line(f"{LIKE_CALLS} ({_fmt(like['pairs'])} friend pairs)", like,
                         "ReportSteps, ghz", g("ingest", "report_steps_ghz")))
        out.append(_line(f"{FRIEND_CHECKS} of the same pairs (social_svc alone)",
                         like[FRIEND_CHECKS], LIKE_CALLS, like))
    left = g("left_rankings") or {}
    if left:
        out.append(_line(f"{RANK_NONE_LEFT}, 4 callers", left[RANK_NONE_LEFT]))
        out.append(_line(f"GetGlobalRank, {_fmt(left['left'])} users left the rankings "
                         f"({_fmt(left['left_on_board'])} on the board), 4 callers",
                         left[RANK_SOME_LEFT], "none left", left[RANK_NONE_LEFT], key="p50_ms"))
    return out


def _line(name, r: dict | None, base_name="", base: dict | None = None, key="rps") -> str:
    if not r:
        return f"| {name} | - | - | - | - | {base_name} | - |"
    ratio = _ratio(r.get(key), (base or {}).get(key))
    return (f"| {name} | {r.get('tool', '')} | {_fmt(r.get('rps'))} | {_fmt(r.get('p50_ms'), 2)} |"
            f" {_fmt(r.get('p99_ms'), 2)} | {base_name} | {_fmt(ratio, 2)} |")


def _past_lines(g, rk: dict) -> list[str]:
    """The table's rows of the week, the archive and the history (issue 22)."""
    out = []
    win = g("windows") or {}
    if win:
        day = win[DAY_BESIDE_WEEK]
        out.append(_line(f"{DAY_BESIDE_WEEK}, {day['callers']} callers", day))
        out.append(_line(f"{WEEK_FRIENDS} ({win['week']['window']}, {win['week']['days_seeded']}"
                         f" days written), {win[WEEK_FRIENDS]['callers']} callers",
                         win[WEEK_FRIENDS], "the day, beside it", day, key="p50_ms"))
        for period in ("week", "month"):
            m = win[period]
            out.append(f"| Redis bytes per (user, {period}) ({m['window']}) | MEMORY USAGE |"
                       f" {_fmt(m['bytes_per_entry'])} B x {_fmt(m['entries'])} | - | - | | |")
    arc = g("archive")
    if arc:
        load, rate = arc["load_data"], arc["archive"]["rows_per_s"]
        out.append(f"| LOAD DATA LOCAL INFILE, the day's rows into a copy of day_steps "
                   f"(server local_infile={load['server'].get('local_infile')}) | pymysql"
                   f" | {_fmt(load['rows_per_s'])} | - | - | | |")
        out.append(f"| day archive, {_fmt(arc['archive']['rows'])} rows of {arc['day']} "
                   f"(rank_svc.archive; {_fmt(arc['archive']['seconds'], 2)} s, of which the "
                   f"board read in rank order alone {_fmt(arc['archive']['board_read_seconds'], 2)}"
                   f" s) | Archiver | {_fmt(rate)} | - | - |"
                   f" LOAD DATA | {_fmt(_ratio(rate, load['rows_per_s']), 2)} |")
    h = g("history")
    if h:
        out.append(_line(f"{HISTORY} ({h['archived_days']} archived + "
                         f"{h['days'] - h['archived_days']} live, {h['users']:,} users), "
                         f"{h['callers']} callers", h, "bare gRPC echo, 4 callers",
                         rk.get(ECHO_FLOOR), key="p99_ms"))
    return out


def _rate_lines(rate: dict | None) -> list[str]:
    """The rate phase: the storm applied unlimited and at the max rate, and freshness."""
    if not rate:
        return []
    out = []
    unlimited = rate["unlimited"]["reports_per_s"]
    for label in ("unlimited", "limited"):
        run = rate[label]
        cap = (f"at most {_fmt(rate['max_reports_per_s'])} reports/s each" if label == "limited"
               else "no max rate")
        base = ("unlimited", _fmt(_ratio(run["reports_per_s"], unlimited), 2)) if (
            label == "limited") else ("", "")
        out.append(f"| apply rate: a storm of {_fmt(rate['storm_reports'])} reports applied by "
                   f"{rate['consumers']} consumer(s), {cap} (in {_fmt(run['seconds_to_apply'])} s,"
                   f" {_fmt(run['throttled_s'])} s throttled) | - | {_fmt(run['reports_per_s'])}"
                   f" | - | - | {base[0]} | {base[1]} |")
        for when in ("during", "after"):
            fresh = run[f"freshness_{when}_ms"]
            out.append(f"| apply rate, {label}: freshness ack → board {when} the storm "
                       f"({fresh['probes']} probes) | - | - | {_fmt(fresh.get('p50_ms'))} | "
                       f"{_fmt(fresh.get('p99_ms'))} | | |")
    return out


def markdown(results: dict) -> str:
    """The run's table."""
    g = lambda *p: _get(results, *p)  # noqa: E731
    run = results["run"]
    s = run["scale"]
    graph = results.get("graph", {})
    deg = graph.get("degrees", {})
    out = [f"## Run {run['run_id']} — scale `{s['name']}` ({s['users']:,} users), "
           f"{results['started']}", "",
           f"Machine: {results['machine']['cpus']} CPUs, {results['machine']['mem_mib']:,} MiB, "
           f"Python {results['machine']['python']}. Graph: {_fmt(graph.get('rows'))} friendship "
           f"rows, loaded in {_fmt(graph.get('load_seconds'))} s; friends per user p10/p50/p90/"
           f"p99/max = {deg.get('p10')}/{deg.get('p50')}/{deg.get('p90')}/{deg.get('p99')}/"
           f"{deg.get('max')}, {_fmt((deg.get('share_50_300') or 0) * 100)} % in 50-300. "
           f"Board day {run['day']}.", "",
           "| figure | tool | rate /s | p50 ms | p99 ms | baseline (same run) | ratio |",
           "|---|---|---|---|---|---|---|"]
    ing = g("ingest") or {}
    out.append(_line("echo server (bare gRPC)", ing.get("echo_ghz")))
    out.append(_line("ReportSteps", ing.get("report_steps_ghz"), "echo, ghz", ing.get("echo_ghz")))
    out.append(_line("echo, Python generator", ing.get("echo_python"), "echo, ghz",
                     ing.get("echo_ghz")))
    raw = g("backlog")
    if raw:
        out.append(f"| raw confluent-kafka producer loop, one record per report | python | "
                   f"{_fmt(raw['acked_per_s'])} | - | - | | |")
    batch = ing.get("report_steps_batch")
    if batch:
        out.append(f"| ReportStepsBatch ({REPORTS_PER_RECORD}/batch), acked reports | python | "
                   f"{_fmt(batch['items_per_s'])} | {_fmt(batch['p50_ms'], 2)} | "
                   f"{_fmt(batch['p99_ms'], 2)} | raw producer | "
                   f"{_fmt(_ratio(batch['items_per_s'], (raw or {}).get('acked_per_s')), 2)} |")
    cons = g("consumer")
    if cons:
        z = cons["zadd_pipelined"]["zadd_per_s"]
        out.append(f"| redis-benchmark ZADD -P 100 | redis-benchmark | {_fmt(z)} | - | - | | |")
        for shape in ("single", "batched"):
            part = cons[shape]
            out.append(f"| consumer apply, reports ({_fmt(part['reports'])} in "
                       f"{_fmt(part['records'])} records, {cons['consumers']} process) | - |"
                       f" {_fmt(part['reports_per_s'])} | - | - |"
                       f" ZADD -P 100 | {_fmt(_ratio(part['reports_per_s'], z), 2)} |")
    fr = g("freshness")
    if fr:
        out.append(f"| freshness ack → GetGlobalRank ({fr['probes']} probes, "
                   f"{_fmt(fr['background_reports_per_s'])} reports/s) | - | - | "
                   f"{_fmt(fr['p50_ms'])} | {_fmt(fr['p99_ms'])} | | |")
    rk, nv = g("ranking") or {}, g("naive") or {}
    for name, sql in QUESTIONS.items():
        out.append(_line(f"{name}, {READERS[sql]} callers", rk.get(name), f"SQL {sql}",
                         nv.get(sql), key="p50_ms"))
    if SATURATED in rk:
        out.append(_line(f"{SATURATED} ({rk[SATURATED]['callers']} callers)", rk[SATURATED]))
    if COLD in rk:
        cold = rk[COLD]
        once = "each once" if cold["calls"] <= cold["users"] else "some twice"
        out.append(_line(f"{COLD} ({cold['callers']} callers, {cold['calls']:,} calls over "
                         f"{cold['users']:,} users, {once})", cold,
                         f"list held: {SATURATED}", rk.get(SATURATED)))
    if LIST_FRIENDS in rk:
        out.append(_line(f"{LIST_FRIENDS} ({rk[LIST_FRIENDS]['callers']} callers)",
                         rk[LIST_FRIENDS]))
    if ECHO_FLOOR in rk:
        out.append(_line("bare gRPC echo, 4 callers (floor of a call)", rk[ECHO_FLOOR]))
        out.append(_line(f"{RANK_BESIDE_ECHO} ({rk[ECHO_FLOOR]['callers']})",
                         rk.get("GetGlobalRank"), "bare gRPC echo", rk[ECHO_FLOOR]))
    if TOP_WITH_GHZ in rk:
        out.append(_line(f"{TOP_WITH_GHZ} ({rk[TOP_WITH_GHZ]['callers']} callers, tool comparison)",
                         rk[TOP_WITH_GHZ], "GetGlobalTop(100), python",
                         rk.get("GetGlobalTop(100)")))
    for sql in QUESTIONS.values():
        out.append(_line(f"naive SQL {sql}, {READERS[sql]} connections", nv.get(sql)))
    up = nv.get("upsert_max")
    if up:
        out.append(f"| naive SQL upserts, max (100 rows/stmt, {up['connections']} conns) |"
                   f" pymysql | {_fmt(up['rows_per_s'])} | - | - | | |")
    st = g("storm")
    if st:
        sb, na = st["stepboard"], st["naive"]
        out.append(_line(f"storm: GetFriendRanking 200 @ {_fmt(sb['ingest']['items_per_s'])} "
                         "reports/s", sb["friend_ranking_200"]))
        out.append(_line(f"storm: naive JOIN 200 @ {_fmt(na['upserts']['rows_per_s'])} "
                         "upserts/s", na["friend_ranking_200"], "stepboard under storm",
                         sb["friend_ranking_200"], key="p99_ms"))
    out += _rate_lines(g("rate"))
    lib = g("library")
    if lib:
        out.append(_line("leaderboard lib rank_for", lib.get("global_rank"),
                         "GetGlobalRank", rk.get("GetGlobalRank"), key="p50_ms"))
        out.append(_line("leaderboard lib ranked_in_list(200)", lib.get("friend_list_200"),
                         "GetFriendRanking 200", rk.get("GetFriendRanking 200"), key="p50_ms"))
    mem = g("memory")
    if mem:
        out.append(f"| Redis bytes per (user, day) | MEMORY USAGE | {_fmt(mem['bytes_per_entry'])}"
                   f" B x {_fmt(mem['entries'])} | - | - | | |")
    out += _past_lines(g, rk)
    out += _social_lines(g)
    rss = dict(g("rss") or {}) | {"precompute (peak)": g("precompute_rss", "precompute_peak_mib")}
    if any(rss.values()):
        out.append("| RSS MiB | /proc | " + ", ".join(f"{k} {v}" for k, v in rss.items() if v)
                   + " | - | - | | |")
    out += ["", "Ratio column: rate ÷ baseline rate; for latency rows marked with a SQL or library"
            " baseline it is this p50 (or p99 for the storm) ÷ the baseline's; the week's"
            " ranking: its p50 ÷ the day's; GetHistory: its p99 ÷ the bare echo's; the"
            " ranking with likes and GetGlobalRank with users out: their p50 ÷ the row"
            " before's.", "",
            "| target | measured | met |", "|---|---|---|"]
    for name, figure, met in targets(results):
        out.append(f"| {name} | {figure} | {'-' if met is None else ('yes' if met else 'NO')} |")
    if results.get("errors"):
        out += ["", "Phases that failed: " + "; ".join(f"{k}: {v}" for k, v in
                                                      results["errors"].items())]
    return "\n".join(out) + "\n"


def plots(results: dict, stem: str) -> list[str]:
    """Latency CDFs and throughput bars next to their baselines (small PNGs)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = results.get("samples", {})
    written = []
    groups = {
        "ingest-cdf": ["echo", "ReportSteps", "echo (python gen)", "ReportStepsBatch", LIKE_CALLS,
                       FRIEND_CHECKS],
        "ranking-cdf": ["GetGlobalTop(100)", "GetGlobalRank", "GetFriendRanking 200", COLD,
                        "GetFriendRanking 5000", "GetFriendRanking hot", "naive global_top",
                        "naive global_rank", "naive friend_ranking_200",
                        "naive friend_ranking_5000", "leaderboard lib rank_for",
                        "leaderboard lib ranked_in_list 200", DAY_BESIDE_WEEK, WEEK_FRIENDS,
                        HISTORY, PLAIN_FRIENDS, LIKED_FRIENDS, RANK_NONE_LEFT,
                        RANK_SOME_LEFT],
        "storm-cdf": ["storm: stepboard GetFriendRanking 200", "storm: naive friend ranking 200",
                      "freshness"],
    }
    for name, series in groups.items():
        present = [s for s in series if s in samples]
        if not present:
            continue
        fig, ax = plt.subplots(figsize=(7, 4), dpi=80)
        for s in present:
            style = "--" if s.startswith("naive") else ":" if s.startswith("leader") else "-"
            ax.plot(samples[s]["quantiles_ms"], np.arange(101) / 100, style, label=s)
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms, log)")
        ax.set_ylabel("fraction of calls")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title(f"{name} — {results['run']['scale']['name']}")
        fig.tight_layout()
        path = f"{stem}-{name}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    g = lambda *p: _get(results, *p)  # noqa: E731
    baseline, ours = "#999999", "#1f77b4"
    bars = [
        ("echo", g("ingest", "echo_ghz", "rps"), baseline),
        ("ReportSteps", g("ingest", "report_steps_ghz", "rps"), ours),
        ("Like", g("like_calls", "rps"), ours),
        ("raw producer", g("backlog", "acked_per_s"), baseline),
        ("ReportStepsBatch", g("ingest", "report_steps_batch", "items_per_s"), ours),
        ("ZADD -P100", g("consumer", "zadd_pipelined", "zadd_per_s"), baseline),
        ("consumer, 1/record", g("consumer", "single", "reports_per_s"), ours),
        (f"consumer, {REPORTS_PER_RECORD}/record", g("consumer", "batched", "reports_per_s"),
         ours),
        ("SQL upserts", g("naive", "upsert_max", "rows_per_s"), baseline),
        ("LOAD DATA", g("archive", "load_data", "rows_per_s"), baseline),
        ("day archive", g("archive", "archive", "rows_per_s"), ours),
    ]
    bars = [bar for bar in bars if bar[1]]
    if bars:
        fig, ax = plt.subplots(figsize=(7, 4), dpi=80)
        ax.bar(*zip(*[(k, v) for k, v, _ in bars], strict=True), color=[c for _, _, c in bars])
        ax.set_yscale("log")
        ax.set_ylabel("per second (log)")
        ax.set_title("throughput: baseline (grey) vs stepboard (blue)")
        plt.setp(ax.get_xticklabels(), rotation=20, fontsize=8)
        fig.tight_layout()
        path = f"{stem}-throughput.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def main(argv: list[str]) -> None:
    """``python -m bench.report_writer RESULTS.json``: rewrites the table and plots of a run."""
    import json

    for path in argv:
        with open(path) as file:
            results = json.load(file)
        stem = path.removesuffix(".json")
        with open(stem + ".md", "w") as file:
            file.write(markdown(results))
        plots(results, stem)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
