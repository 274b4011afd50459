"""The readable side of the results: the targets, their verdicts, and the printed table."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Target:
    """`key` (divided by `baseline`, when given) must be `op` `limit`."""

    key: str
    op: str  # "<=" or ">="
    limit: float
    text: str
    baseline: str | None = None
    ratio_key: str | None = None  # where the ratio is written in results.json

    def value(self, results: dict[str, Any]) -> float | None:
        """The number the target judges (a ratio when there is a baseline), or None if missing."""
        value = results.get(self.key)
        if value is None:
            return None
        if self.baseline is None:
            return float(value)
        base = results.get(self.baseline)
        return float(value) / float(base) if base else None

    def verdict(self, results: dict[str, Any]) -> str:
        """"met", "missed", or "not measured" (the key or its baseline is missing)."""
        value = self.value(results)
        if value is None:
            return "not measured"
        ok = value <= self.limit if self.op == "<=" else value >= self.limit
        return "met" if ok else "missed"


TARGETS = (
    # DBOS targets compare numbers of the same `make bench-peers` run.
    Target("peers_fedflow_flow3_power_per_s", ">=", 10, ">= 10x DBOS", "dbos_flow3_per_s", "flow3_power_vs_dbos"),
    Target("peers_fedflow_flow3_process_per_s", ">=", 30, ">= 30x DBOS", "dbos_flow3_per_s",
           "flow3_process_vs_dbos"),
    Target("peers_fedflow_resume_p50_ms", "<=", 1 / 40, "<= 1/40 DBOS", "dbos_resume_p50_ms", "resume_p50_vs_dbos"),
    Target("peers_fedflow_resume_p50_ms", "<=", 1 / 40, "<= 1/40 DBOS", "dbos_10ms_poll_resume_p50_ms",
           "resume_p50_vs_dbos_10ms_poll"),
    Target("peers_fedflow_pg_flow3_per_s", ">=", 3, ">= 3x DBOS", "dbos_pg_flow3_per_s", "flow3_pg_vs_dbos"),
    Target("peers_fedflow_pg_resume_p50_ms", "<=", 1 / 10, "<= 1/10 DBOS", "dbos_pg_resume_p50_ms",
           "resume_pg_p50_vs_dbos"),
    Target("remote_direct_p50_ms", "<=", 1.3, "<= 1.3x echo", "echo_p50_ms", "remote_direct_p50_vs_echo"),
    Target("remote_direct_per_s", ">=", 0.8, ">= 0.8x echo", "echo_per_s", "remote_direct_per_s_vs_echo"),
    Target("remote_flow_p50_ms", "<=", 2.0, "<= 2x echo", "echo_p50_ms", "remote_flow_p50_vs_echo"),
    Target("remote_direct_64k_p50_ms", "<=", 1.3, "<= 1.3x echo", "echo_64k_p50_ms", "remote_direct_64k_p50_vs_echo"),
    Target("remote_direct_64k_per_s", ">=", 0.8, ">= 0.8x echo", "echo_64k_per_s",
           "remote_direct_64k_per_s_vs_echo"),
    Target("remote_flow_64k_p50_ms", "<=", 2.0, "<= 2x echo", "echo_64k_p50_ms", "remote_flow_64k_p50_vs_echo"),
    Target("replay_1000_ms", "<=", 10, "<= 10 ms"),
    Target("list_page_1m_ms", "<=", 50, "<= 50 ms"),
    Target("console_list_100k_ms", "<=", 50, "<= 50 ms"),
    Target("console_flow_1000_steps_ms", "<=", 100, "<= 100 ms"),
    Target("metrics_scrape_ms", "<=", 10, "<= 10 ms"),
    # An idle console on what `fedflow serve --http` runs (a serve's store is SQLite or PostgreSQL, so the
    # memory store's key has no target).
    Target("console_idle_flow3_process_pct", "<=", 5, "<= +5%"),
    Target("console_idle_flow3_power_pct", "<=", 5, "<= +5%"),
    Target("console_idle_resume_pct", "<=", 5, "<= +5%"),
    Target("console_idle_remote_direct_pct", "<=", 5, "<= +5%"),
    Target("console_idle_remote_flow_pct", "<=", 5, "<= +5%"),
    Target("replay_growth_1000_to_10000", "<=", 15, "~linear: <= 15x"),
    Target("replicate_10000_s", "<=", 2, "<= 2 s"),
    Target("handoff_1000_s", "<=", 1, "<= 1 s"),
    Target("rss_100k_mb", "<=", 150, "<= 150 MB"),
    Target("timer_lateness_p50_ms", "<=", 5, "<= 5 ms"),
    Target("timer_lateness_p99_ms", "<=", 20, "<= 20 ms"),
    Target("timers_100k_rss_mb", "<=", 100, "<= 100 MB"),
    Target("timers_100k_open_s", "<=", 2, "<= 2 s"),
    Target("timer_burst_1000_s", "<=", 1, "<= 1 s"),
    Target("pg_takeover_100_s", "<=", 4, "<= lease 2 + 2 s"),
)
_BY_ROW = {(t.key, t.baseline): t for t in TARGETS}


def target_verdicts(results: dict[str, Any]) -> dict[str, Any]:
    """`target_<key>` verdicts and the targets' ratio keys, for results.json."""
    out: dict[str, Any] = {}
    for target in TARGETS:
        value = target.value(results)
        if target.ratio_key and value is not None:
            out[target.ratio_key] = value
        out[f"target_{target.ratio_key or target.key}"] = target.verdict(results)
    return out


# ------------------------------------------------------------------ the table
Row = tuple[str, str, str | None]  # label, key, baseline key

SECTIONS: tuple[tuple[str, tuple[Row, ...]], ...] = (
    ("SQLite floor: raw sqlite3, WAL, one-row commits (baseline of 1 and 2)", (
        ("commits/s, synchronous=FULL (power)", "sqlite_power_commits_per_s", None),
        ("commits/s, synchronous=NORMAL (process)", "sqlite_process_commits_per_s", None),
        ("commit p50 ms, power", "sqlite_power_commit_p50_ms", None))),
    ("1  3-step flow start -> done, sequential (flows/s)", (
        ("memory store", "flow3_memory_per_s", None),
        ("SQLite process", "flow3_process_per_s", None),
        ("SQLite power    vs raw commits/s", "flow3_power_per_s", "sqlite_power_commits_per_s"),
        ("8 threads at once, process vs sequential", "flow3_process_8threads_per_s", "flow3_process_per_s"),
        ("8 threads at once, power   vs sequential", "flow3_power_8threads_per_s", "flow3_power_per_s"),
        ("bench-peers run: SQLite process vs DBOS", "peers_fedflow_flow3_process_per_s", "dbos_flow3_per_s"),
        ("bench-peers run: SQLite power   vs DBOS", "peers_fedflow_flow3_power_per_s", "dbos_flow3_per_s"))),
    ("2  external resume -> result on SQLite (ms)", (
        ("p50, power     vs raw commit", "resume_p50_ms", "sqlite_power_commit_p50_ms"),
        ("p99, power", "resume_p99_ms", None),
        ("p50, process", "resume_process_p50_ms", None),
        ("bench-peers run: p50 vs DBOS default", "peers_fedflow_resume_p50_ms", "dbos_resume_p50_ms"),
        ("bench-peers run: p50 vs DBOS 10 ms poll", "peers_fedflow_resume_p50_ms",
         "dbos_10ms_poll_resume_p50_ms"))),
    ("3  remote call over gRPC to another process, 100 B (1 caller ms; 8 callers calls/s)", (
        ("raw grpcio echo p50", "echo_p50_ms", None),
        ("raw grpcio echo calls/s", "echo_per_s", None),
        ("(a) direct call p50    vs echo", "remote_direct_p50_ms", "echo_p50_ms"),
        ("(a) direct call p99    vs echo", "remote_direct_p99_ms", "echo_p99_ms"),
        ("(a) direct calls/s     vs echo", "remote_direct_per_s", "echo_per_s"),
        ("(b) remote_node flow p50  vs echo", "remote_flow_p50_ms", "echo_p50_ms"),
        ("(b) remote_node flow p99  vs echo", "remote_flow_p99_ms", "echo_p99_ms"),
        ("(b) remote_node flows/s   vs echo", "remote_flow_per_s", "echo_per_s"),
        ("(b) same flow, process p50 vs echo", "remote_flow_process_p50_ms", "echo_p50_ms"))),
    ("3  same, 64 KiB payload", (
        ("raw grpcio echo p50", "echo_64k_p50_ms", None),
        ("raw grpcio echo calls/s", "echo_64k_per_s", None),
        ("(a) direct call p50    vs echo", "remote_direct_64k_p50_ms", "echo_64k_p50_ms"),
        ("(a) direct calls/s     vs echo", "remote_direct_64k_per_s", "echo_64k_per_s"),
        ("(b) remote_node flow p50  vs echo", "remote_flow_64k_p50_ms", "echo_64k_p50_ms"),
        ("(b) remote_node flows/s   vs echo", "remote_flow_64k_per_s", "echo_64k_per_s"),
        ("(b) same flow, process p50 vs echo", "remote_flow_process_64k_p50_ms", "echo_64k_p50_ms"),
        ("(b) flow, prose payload p50 vs echo", "remote_flow_64k_prose_p50_ms", "echo_64k_p50_ms"),
        ("(b) same, process p50    vs echo", "remote_flow_process_64k_prose_p50_ms", "echo_64k_p50_ms"),
        ("RSS of the called peer afterwards (MiB)", "remote_peer_rss_mb", None))),
    ("4  replay: one resume of a flow holding N journaled steps (ms)", (
        ("N = 10", "replay_10_ms", None),
        ("N = 100", "replay_100_ms", None),
        ("N = 1,000", "replay_1000_ms", None),
        ("N = 10,000", "replay_10000_ms", None),
        ("growth 1,000 -> 10,000 (linear = 10)", "replay_growth_1000_to_10000", None),
        ("us per step at 10,000", "replay_10000_us_per_step", None))),
    ("5  replication to another process", (
        ("10,000 flows: replicate + restore (s)", "replicate_10000_s", None),
        ("  of which push (s)", "replicate_10000_push_s", None),
        ("  of which restore (s)", "replicate_10000_restore_s", None),
        ("  export size (MiB)", "replicate_10000_mib", None),
        ("  MiB/s end to end", "replicate_10000_mib_per_s", None),
        ("handoff of 1,000 flows (s)", "handoff_1000_s", None))),
    ("6  memory of `fedflow serve` (MiB)", (
        ("RSS holding 100,000 suspended flows", "rss_100k_mb", None),
        ("RSS of an empty store", "rss_empty_mb", None),
        ("store file (MiB)", "rss_100k_db_mib", None))),
    ("7  timers in a SQLite store holding 100,000 pending timers", (
        ("lateness p50: due -> one-step flow done (ms)", "timer_lateness_p50_ms", None),
        ("lateness p99 (ms)", "timer_lateness_p99_ms", None),
        ("lateness max (ms)", "timer_lateness_max_ms", None),
        ("1,000 due at once, power: due -> all done (s)", "timer_burst_1000_s", None),
        ("serve: start -> SERVING (s)", "timers_100k_open_s", None),
        ("  same, empty store (s)", "timers_empty_open_s", None),
        ("serve: RSS (MiB)", "timers_100k_rss_mb", None),
        ("  same, empty store (MiB)", "timers_empty_rss_mb", None),
        ("store file (MiB)", "timers_100k_db_mib", None),
        ("building it: 100,000 rows by put_flows (s)", "timers_100k_build_s", None))),
    ("bench-peers: 1,000 flows asleep, each side in its own process, vs DBOS.sleep", (
        ("wake lateness p50: due -> next step ran (ms)", "peers_fedflow_sleep_lateness_p50_ms",
         "dbos_sleep_lateness_p50_ms"),
        ("wake lateness p99 (ms)", "peers_fedflow_sleep_lateness_p99_ms", "dbos_sleep_lateness_p99_ms"),
        ("RSS while asleep (MiB)", "peers_fedflow_sleep_rss_mb", "dbos_sleep_rss_mb"),
        ("OS threads while asleep", "peers_fedflow_sleep_threads", "dbos_sleep_threads"))),
    ("9  PostgreSQL store shared by `fedflow serve` processes", (
        ("3-step flows/s over gRPC, 1 serve", "flow3_pg_1serve_per_s", None),
        ("3-step flows/s over gRPC, 2 serves vs 1", "flow3_pg_2serve_per_s", "flow3_pg_1serve_per_s"),
        ("resume p50 ms, in-process Engine", "resume_pg_p50_ms", None),
        ("resume p99 ms, in-process Engine", "resume_pg_p99_ms", None),
        ("kill -9, 100 running flows done elsewhere (s)", "pg_takeover_100_s", None),
        ("bench-peers run: flows/s, Engine vs DBOS", "peers_fedflow_pg_flow3_per_s", "dbos_pg_flow3_per_s"),
        ("bench-peers run: resume p50 ms vs DBOS", "peers_fedflow_pg_resume_p50_ms", "dbos_pg_resume_p50_ms"),
        ("bench-peers run: resume p99 ms vs DBOS", "peers_fedflow_pg_resume_p99_ms", "dbos_pg_resume_p99_ms"))),
    ("10 an idle console: % slower with it on than off (paired batches, median)", (
        ("1  3-step flows, memory (no serve runs it)", "console_idle_flow3_memory_pct", None),
        ("1  3-step flows, SQLite process", "console_idle_flow3_process_pct", None),
        ("1  3-step flows, SQLite power", "console_idle_flow3_power_pct", None),
        ("2  resumes, SQLite power", "console_idle_resume_pct", None),
        ("3  direct calls to the peer", "console_idle_remote_direct_pct", None),
        ("3  remote_node flows to that peer", "console_idle_remote_flow_pct", None),
        ("noise floor: off vs off, 3-step power", "console_idle_aa_pct", None),
        ("noise floor: direct calls, two peers without", "console_idle_remote_aa_pct", None))),
)


def fmt(value: Any) -> str:
    """A number for the table: thousands unrounded-looking, small ones to 3 significant digits."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _row(results: dict[str, Any], label: str, key: str, baseline: str | None) -> str | None:
    """One table line, or None when `key` was not measured."""
    if key not in results:
        return None
    value, base = results[key], results.get(baseline) if baseline else None
    ratio = f"{value / base:.3g}x" if base else ""
    target = _BY_ROW.get((key, baseline))
    goal, verdict = (target.text, target.verdict(results)) if target else ("", "")
    base_text = fmt(base) if baseline else ""
    return f"  {label:44} {fmt(value):>10} {base_text:>10} {ratio:>9}  {goal:16} {verdict}"


def print_table(results: dict[str, Any]) -> None:
    """Print every measured section: value, baseline, ratio, target, verdict."""
    print(f"\nfedflow benchmarks  {results.get('git_commit', '')[:12]}  {results.get('machine', '')}  "
          f"python {results.get('python', '')}{'  (quick)' if results.get('quick') else ''}")
    print(f"  {'':44} {'fedflow':>10} {'baseline':>10} {'ratio':>9}  {'target':16} verdict")
    for title, rows in SECTIONS:
        lines = [line for line in (_row(results, *row) for row in rows) if line is not None]
        if lines:
            print(f"\n{title}")
            print("\n".join(lines))
    missed = [t.ratio_key or t.key for t in TARGETS if t.verdict(results) == "missed"]
    pending = [t.ratio_key or t.key for t in TARGETS if t.verdict(results) == "not measured"]
    print(f"\ntargets met: {sum(t.verdict(results) == 'met' for t in TARGETS)}/{len(TARGETS)}"
          f"{'; missed: ' + ', '.join(missed) if missed else ''}"
          f"{'; not measured: ' + ', '.join(pending) if pending else ''}")
