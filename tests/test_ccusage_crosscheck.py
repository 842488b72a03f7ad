"""tally's token totals against ccusage 20.0.24 on the same files (`make setup` installs it).

Claude: equal session by session, except that ccusage 20.0.24 counts a `/btw` sidechain
replay when the replayed message's first line already carried its final usage (it only
looks the message up after having replaced a less complete copy); the independent reference
count reproduces that quirk exactly, and tally drops every replay as the reference rule says.
Codex: equal for every top-level rollout; subagent rollouts (which replay their parent's
history) are compared with the generator's ground truth in test_ingest_store instead.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from assets.costs.live import live_days
from ingestion.demo.corpus import generate_corpus
from ingestion.reports.blocks import billing_blocks
from ingestion.store import CanonicalStore
from ingestion.warehouse.base import open_warehouse
from tests.ingest_helpers import ingest_corpus, totals_by_root_session
from tests.reference_count import claude_totals

pytestmark = pytest.mark.slow
CCUSAGE = (
    Path(__file__).resolve().parents[1] / ".data" / "tools" / "node_modules" / ".bin" / "ccusage"
)


def ccusage(kind: str, root: Path, home: Path, report: str = "session") -> list[dict]:
    """ccusage's rows of `report` (`session`: "sessions", `blocks`: "blocks")."""
    if not CCUSAGE.exists():
        pytest.skip("ccusage is not installed: run `make setup` (needs npm)")
    env = {
        **os.environ,
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(root / "claude"),
        "CODEX_HOME": str(root / "codex"),
    }
    out = subprocess.run(
        [str(CCUSAGE), kind, report, "--offline", "--json", "-z", "UTC", "--mode", "calculate"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout)["sessions" if report == "session" else report]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return generate_corpus(tmp_path_factory.mktemp("corpus"), megabytes=4, seed=23)


def test_claude_sessions_equal_ccusage(conninfo, corpus, tmp_path):
    ingest_corpus(conninfo, corpus.root)
    stored = totals_by_root_session(conninfo)
    quirk: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (session, _), row in claude_totals(corpus.claude_dir, ccusage_btw_quirk=True).items():
        for name, value in row.items():
            quirk[session][name] += value
    sessions = ccusage("claude", corpus.root, tmp_path)
    assert len(sessions) == len([k for k in stored if k[0] == "claude_code"])
    replays_counted_by_ccusage = 0
    for row in sessions:
        expected = quirk[row["sessionId"]]
        got = (
            row["inputTokens"],
            row["outputTokens"],
            row["cacheCreationTokens"],
            row["cacheReadTokens"],
        )
        assert got == (
            expected["input_tokens"],
            expected["output_tokens"],
            expected["cache_write_tokens"],
            expected["cache_read_tokens"],
        )
        mine = stored[("claude_code", row["sessionId"])]
        if mine["output_tokens"] != row["outputTokens"]:
            replays_counted_by_ccusage += 1
        else:
            assert mine["input_tokens"] == row["inputTokens"]
            assert mine["cache_read_tokens"] == row["cacheReadTokens"]
            assert (
                mine["cache_write_5m_tokens"] + mine["cache_write_1h_tokens"]
                == row["cacheCreationTokens"]
            )
    assert replays_counted_by_ccusage < len(sessions) / 4


def test_codex_rollouts_equal_ccusage(conninfo, corpus, tmp_path):
    import psycopg

    ingest_corpus(conninfo, corpus.root)
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute("""
            SELECT s.session_key, s.is_subagent, sum(input_tokens), sum(output_tokens),
                   sum(reasoning_tokens), sum(cache_read_tokens)
            FROM token_usage_events e JOIN agent_sessions s ON s.id = e.session_id
            WHERE e.source = 'codex' GROUP BY 1, 2""").fetchall()
    mine = {row[0]: (row[1], tuple(int(v) for v in row[2:])) for row in rows}
    compared = 0
    for row in ccusage("codex", corpus.root, tmp_path):
        key = "-".join(row["sessionId"].split("-")[-5:])
        is_subagent, tokens = mine[key]
        if is_subagent:
            continue
        assert tokens == (
            row["inputTokens"],
            row["outputTokens"],
            row["reasoningOutputTokens"],
            row["cacheReadTokens"],
        ), key
        compared += 1
    assert compared >= 5


def test_claude_billing_blocks_start_and_end_where_ccusage_s_do(db_url, conninfo, corpus,
                                                                tmp_path):  # fmt: skip
    """The corpus mixes Claude Code and Codex usage through the same hours: blocks of both in
    one sequence started wherever either tool's request came first."""
    ingest_corpus(conninfo, corpus.root)
    store = CanonicalStore(db_url)
    live = live_days(store, store.usage_days(), frozenset())
    warehouse = open_warehouse(f"duckdb://{tmp_path / 'warehouse.duckdb'}")
    blocks = billing_blocks(warehouse, "calculate", None, None, live=live)
    assert {b.source for b in blocks} == {"claude_code", "codex"}
    theirs = [b for b in ccusage("claude", corpus.root, tmp_path, "blocks") if not b["isGap"]]
    ours = [b for b in blocks if b.source == "claude_code"]
    assert len(ours) > 5
    # ccusage's last entry of a block can be a later copy of a request's line, which the
    # reference rule folds into the request: the ends of activity may differ by seconds
    assert [(b.start, b.end) for b in ours] == [
        (_instant(b["startTime"]), _instant(b["endTime"])) for b in theirs
    ]


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
