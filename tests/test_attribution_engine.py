"""The attribution engine on small frames: every tier, every tie and conflict, the session
split, and board state as of each event's time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from assets.attribution.engine import ENGINE_VERSION, AttributionSettings, attribute

T0 = datetime(2026, 10, 3, 10, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def events(*rows: tuple) -> pl.DataFrame:
    """(event_id, session_key, agent_id, project_id, minutes)"""
    return pl.DataFrame(
        [{"event_id": e, "session_key": s, "agent_id": a, "project_id": p, "occurred_at": at(m)}
         for e, s, a, p, m in rows],
        schema={"event_id": pl.Int64, "session_key": pl.String, "agent_id": pl.Int64,
                "project_id": pl.Int64, "occurred_at": pl.Datetime("us", "UTC")},
    )  # fmt: skip


def hints(*rows: tuple) -> pl.DataFrame:
    """(hint_id, session_key, agent_id, issue_id, from_minutes, to_minutes or None)"""
    return pl.DataFrame(
        [{"hint_id": h, "session_key": s, "agent_id": a, "issue_id": i, "valid_from": at(f),
          "valid_to": None if t is None else at(t)} for h, s, a, i, f, t in rows],
        schema={"hint_id": pl.Int64, "session_key": pl.String, "agent_id": pl.Int64,
                "issue_id": pl.Int64, "valid_from": pl.Datetime("us", "UTC"),
                "valid_to": pl.Datetime("us", "UTC")},
    )  # fmt: skip


def progress(*rows: tuple) -> pl.DataFrame:
    """(issue_id, agent_id, project_id, start_minutes, end_minutes or None)"""
    return pl.DataFrame(
        [{"issue_id": i, "agent_id": a, "project_id": p, "started_at": at(s),
          "ended_at": None if e is None else at(e)} for i, a, p, s, e in rows],
        schema={"issue_id": pl.Int64, "agent_id": pl.Int64, "project_id": pl.Int64,
                "started_at": pl.Datetime("us", "UTC"), "ended_at": pl.Datetime("us", "UTC")},
    )  # fmt: skip


def touches(*rows: tuple) -> pl.DataFrame:
    """(session_key, issue_id, minutes)"""
    return pl.DataFrame(
        [{"session_key": s, "issue_id": i, "touched_at": at(m)} for s, i, m in rows],
        schema={"session_key": pl.String, "issue_id": pl.Int64,
                "touched_at": pl.Datetime("us", "UTC")},
    )  # fmt: skip


def commits(*rows: tuple) -> pl.DataFrame:
    """(session_key, commit_hash, minutes, issue_id)"""
    return pl.DataFrame(
        [{"session_key": s, "commit_hash": c, "committed_at": at(m), "issue_id": i}
         for s, c, m, i in rows],
        schema={"session_key": pl.String, "commit_hash": pl.String,
                "committed_at": pl.Datetime("us", "UTC"), "issue_id": pl.Int64},
    )  # fmt: skip


def run(ev, h=None, p=None, t=None, c=None, **settings):
    out = attribute(ev, h if h is not None else hints(), p if p is not None else progress(),
                    t if t is not None else touches(), c if c is not None else commits(),
                    AttributionSettings(**settings))  # fmt: skip
    return {row["event_id"]: row for row in out.iter_rows(named=True)}


def test_an_explicit_hint_decides_and_a_session_is_split_when_it_moves():
    out = run(
        events((1, "s", 7, 1, 5), (2, "s", 7, 1, 25), (3, "s", 7, 1, 50)),
        hints((10, "s", None, 100, 0, None), (11, "s", None, 200, 30, None)),
        progress((300, 7, 1, 0, None)),
    )  # a single in-progress issue loses to a claim
    assert [(out[e]["issue_id"], out[e]["signal"]) for e in (1, 2, 3)] == [
        (100, "explicit"),
        (100, "explicit"),
        (200, "explicit"),
    ]
    assert out[3]["hint_id"] == 11 and out[3]["confidence"] == 1.0
    assert out[1]["engine_version"] == ENGINE_VERSION


def test_conflicting_claims_at_one_instant_are_never_guessed():
    out = run(
        events((1, "s", 7, 1, 5)),
        hints((10, "s", None, 100, 0, None), (11, "s", None, 200, 0, None)),
        progress((300, 7, 1, 0, None)),
    )
    assert (out[1]["issue_id"], out[1]["signal"], out[1]["reason"]) == (
        None,
        "unattributed",
        "ambiguous",
    )


def test_claims_of_several_issues_let_a_touch_or_commit_pick_only_among_them():
    claims = hints(
        (10, "s", None, 100, 0, None), (11, "s", None, 200, 0, None),  # session s: 100 and 200
        (12, "u", None, 100, 0, None), (13, "u", None, 200, 0, None),  # session u: the same
        (20, None, 8, 100, 0, None), (21, None, 8, 200, 0, None),  # agent 8: 100 and 200
        (22, "w", None, 300, 0, None),  # session w (agent 8) claims one issue itself
    )  # fmt: skip
    out = run(
        events((1, "s", 7, 1, 30), (2, "u", 7, 1, 30), (3, "v", 8, 1, 30), (4, "w", 8, 1, 30),
               (5, "x", 8, 1, 30), (6, "y", 8, 1, 30)),
        claims,
        progress((100, 7, 1, 0, None)),  # the board's lone issue of agent 7 picks nothing
        touches(("s", 200, 20), ("u", 999, 20), ("v", 100, 25)),
        commits(("x", "c1", 40, 200), ("y", "c2", 40, 999)),
    )  # fmt: skip
    decided = {e: (out[e]["issue_id"], out[e]["signal"], out[e]["reason"]) for e in out}
    assert decided == {
        1: (200, "session-recent-touch", None),
        2: (None, "unattributed", "ambiguous"),  # the touched issue was not claimed
        3: (100, "session-recent-touch", None),  # bounded by the agent's claims
        4: (300, "explicit", None),  # the session's own claim before the agent's
        5: (200, "session-commit", None),
        6: (None, "unattributed", "ambiguous"),
    }


def test_an_expired_hint_no_longer_covers_and_an_agent_hint_applies_without_session():
    out = run(
        events((1, "s", 7, 1, 5), (2, "s", 7, 1, 40), (3, "other", 7, 1, 45)),
        hints((10, "s", None, 100, 0, 30), (20, None, 7, 500, 35, None)),
    )
    assert (out[1]["issue_id"], out[1]["signal"]) == (100, "explicit")
    assert (out[2]["issue_id"], out[2]["signal"]) == (500, "explicit")  # agent-wide claim
    assert (out[3]["issue_id"], out[3]["hint_id"]) == (500, 20)


def test_single_in_progress_uses_the_board_as_of_the_event():
    board = progress((100, 7, 1, 0, 60), (200, 7, 1, 60, 120))  # 100 then 200, then done
    out = run(events((1, "s", 7, 1, 30), (2, "s", 7, 1, 90), (3, "s", 7, 1, 150)), p=board)
    assert (out[1]["issue_id"], out[1]["signal"]) == (100, "single-in-progress")
    assert out[2]["issue_id"] == 200  # not today's board: 200 is done by now
    assert (out[3]["issue_id"], out[3]["reason"]) == (None, "no-signal")


def test_an_orchestrator_with_several_issues_is_ambiguous_unless_a_touch_decides():
    board = progress((100, 7, 1, 0, None), (200, 7, 1, 0, None))
    out = run(events((1, "s", 7, 1, 30), (2, "t", 7, 1, 30)), p=board, t=touches(("t", 200, 20)))
    assert (out[1]["signal"], out[1]["reason"]) == ("unattributed", "ambiguous")
    assert (out[2]["issue_id"], out[2]["signal"]) == (200, "session-recent-touch")


def test_the_project_decides_only_when_the_agent_is_unknown():
    board = progress((100, 8, 1, 0, None))  # agent 8's issue, the only one of project 1
    out = run(events((1, "s", None, 1, 30), (2, "s", 7, 1, 30), (3, "s", None, 2, 30)), p=board)
    assert (out[1]["issue_id"], out[1]["signal"], out[1]["confidence"]) == (
        100,
        "single-in-progress",
        0.8,
    )
    assert out[2]["signal"] == "unattributed"  # agent 7 is known and has nothing in progress
    assert out[3]["signal"] == "unattributed"


def test_recent_touches_decide_old_ones_are_stale_and_ties_are_ambiguous():
    out = run(events((1, "s", None, None, 30), (2, "s", None, None, 400), (3, "u", None, None, 30)),
              t=touches(("s", 100, 10), ("u", 100, 20), ("u", 200, 20)),
              touch_window=timedelta(hours=2))  # fmt: skip
    assert (out[1]["issue_id"], out[1]["signal"], out[1]["touched_at"]) == (
        100,
        "session-recent-touch",
        at(10),
    )
    assert (out[2]["signal"], out[2]["reason"]) == ("unattributed", "stale")
    assert (out[3]["signal"], out[3]["reason"]) == ("unattributed", "ambiguous")


def test_the_next_single_reference_commit_within_the_window():
    # bbb2222 is nearer but earlier: it recorded the work before this event
    out = run(events((1, "s", None, None, 30), (2, "s", None, None, 500), (3, "m", None, None, 30)),
              c=commits(("s", "aaa1111", 40, 100), ("s", "bbb2222", 25, 200),
                        ("m", "ccc3333", 31, 100), ("m", "ccc3333", 31, 200)),
              commit_window=timedelta(hours=1))  # fmt: skip
    assert (out[1]["issue_id"], out[1]["signal"], out[1]["commit_hash"]) == (
        100,
        "session-commit",
        "aaa1111",
    )
    assert (out[2]["signal"], out[2]["reason"]) == ("unattributed", "no-signal")
    assert out[3]["signal"] == "unattributed"  # a commit naming two issues proves nothing


def test_tiers_are_tried_in_order():
    out = run(
        events((1, "s", 7, 1, 30)),
        p=progress((100, 7, 1, 0, None)),
        t=touches(("s", 200, 25)),
        c=commits(("s", "abc1234", 29, 300)),
    )
    assert (out[1]["issue_id"], out[1]["signal"]) == (100, "single-in-progress")
    out = run(
        events((1, "s", 7, 1, 30)), t=touches(("s", 200, 25)), c=commits(("s", "abc1234", 29, 300))
    )
    assert (out[1]["issue_id"], out[1]["signal"]) == (200, "session-recent-touch")


def test_a_touch_of_an_issue_finished_since_is_stale():
    board = progress((100, None, None, 0, 20))  # 100 in progress until minute 20, then done
    out = run(
        events((1, "s", None, None, 15), (2, "s", None, None, 30)),
        p=board,
        t=touches(("s", 100, 10)),
    )
    assert (out[1]["issue_id"], out[1]["signal"]) == (100, "session-recent-touch")
    assert (out[2]["signal"], out[2]["reason"]) == ("unattributed", "stale")


def test_a_touch_of_an_issue_already_finished_is_not_current_work():
    # 100 was done at minute 5; the session reads it at 10 (an old card), then 100 is taken
    # up again at 40: from then on a touch of it counts again
    board = progress((100, None, None, 0, 5), (100, None, None, 40, None))
    out = run(
        events((1, "s", None, None, 15), (2, "s", None, None, 50)),
        p=board,
        t=touches(("s", 100, 10), ("s", 100, 45)),
    )
    assert (out[1]["signal"], out[1]["reason"]) == ("unattributed", "stale")
    assert (out[2]["issue_id"], out[2]["signal"]) == (100, "session-recent-touch")


def test_commits_at_one_instant_naming_different_issues_are_a_tie():
    out = run(
        events((1, "s", None, None, 30), (2, "t", None, None, 30)),
        c=commits(("s", "aaa1111", 40, 100), ("s", "bbb2222", 40, 200),
                  ("t", "ccc3333", 40, 100), ("t", "ddd4444", 40, 100)),
        commit_window=timedelta(hours=1),
    )  # fmt: skip
    assert (out[1]["signal"], out[1]["reason"]) == ("unattributed", "ambiguous")
    assert (out[2]["issue_id"], out[2]["signal"]) == (100, "session-commit")  # same issue
