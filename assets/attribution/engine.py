"""The tiered attribution engine: which work item each model request served.

Pure polars, vectorised with as-of joins; no per-event Python. For each usage event the first
tier that decides wins:

1. `explicit`: the latest attribution hint (agent or API: "this session serves issue X from
   T"; a heartbeat run's issue over the run) covering the event, for its session, else for its
   agent. A session that moves from one issue to another is split at the hint's instant.
   Hints claiming several issues at one instant do not decide, and they bound what follows:
   the touch and commit tiers may pick one of the claimed issues, never another, and the
   board (which speaks for the agent, not the session) does not pick among them.
2. `single-in-progress`: exactly one issue in progress for the event's agent at that instant
   (status history, as of the event's time, never today's board); when the agent is unknown,
   exactly one for its project.
3. `session-recent-touch`: the issue the session touched last before the event, within a
   window, unless that issue is finished at the event's time (it left in-progress since the
   touch, or had before it and was not taken up again); older touches and touches of
   finished issues make the event `stale`.
4. `session-commit`: the session's next commit within a window (work precedes the commit
   that records it) that references exactly one issue; commits at one instant naming
   different issues are a tie (`ambiguous`).
5. `unattributed`, with the reason: `ambiguous` when a tier found several candidates and no
   later tier decided (wrong is worse than empty), `stale`, or `no-signal`.

Every row carries the issue, the signal, a confidence, and the evidence that decided it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import polars as pl

ENGINE_VERSION = "tally-attribution-3"
CONFIDENCE = {
    "explicit": 1.0,
    "single-in-progress": 0.9,
    "single-in-progress-project": 0.8,
    "session-recent-touch": 0.7,
    "session-commit": 0.6,
}


@dataclass(frozen=True)
class AttributionSettings:
    touch_window: timedelta = timedelta(hours=2)
    commit_window: timedelta = timedelta(hours=2)


# Input frames (columns; times are UTC datetimes):
#   events:    event_id, session_key, agent_id, project_id, occurred_at
#   hints:     hint_id, session_key (or null), agent_id (or null), issue_id, valid_from,
#              valid_to (null: open)
#   progress:  issue_id, agent_id, project_id, started_at, ended_at (null: still in progress)
#   touches:   session_key, issue_id, touched_at
#   commits:   session_key, commit_hash, committed_at, issue_id (one row per reference)


def _latest_hint(
    events: pl.DataFrame, hints: pl.DataFrame, by: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per event, the latest hint for `by` that started at or before it and still covers it;
    `hint_candidates` > 1 when several issues were claimed at that same instant. Also, for
    those events only, the claimed issues (event_id, issue_id): a small frame, so that 10M
    events do not carry a list each."""
    scoped = hints.filter(pl.col(by).is_not_null())
    grouped = (
        scoped.group_by(by, "valid_from")
        .agg(
            pl.col("issue_id").n_unique().alias("hint_candidates"),
            pl.col("issue_id").min().alias("hint_issue"),
            pl.col("hint_id").min().alias("hint_id"),
            pl.col("valid_to").max().alias("hint_valid_to"),
        )
        .sort("valid_from")
    )
    left = events.filter(pl.col(by).is_not_null()).sort("occurred_at")
    matched = left.join_asof(
        grouped, left_on="occurred_at", right_on="valid_from", by=by, check_sortedness=False
    )  # sorted by time, so within each group
    covering = pl.col("hint_valid_to").is_null() | (pl.col("occurred_at") < pl.col("hint_valid_to"))
    matched = matched.filter(pl.col("valid_from").is_not_null() & covering)
    claims = (
        matched.filter(pl.col("hint_candidates") > 1)
        .select("event_id", by, "valid_from")
        .join(scoped.select(by, "valid_from", "issue_id"), on=[by, "valid_from"])
        .select("event_id", "issue_id")
        .unique()
    )
    decided = matched.select("event_id", "hint_issue", "hint_id", "hint_candidates")
    return decided, claims


def _in_progress_counts(events: pl.DataFrame, progress: pl.DataFrame, by: str) -> pl.DataFrame:
    """Per event, how many issues were in progress for its `by` at that instant, and (when
    exactly one) which: cumulative counts and id sums over interval edges, joined as of the
    event's time."""
    intervals = progress.filter(pl.col(by).is_not_null())
    starts = intervals.select(by, pl.col("started_at").alias("at"), pl.lit(1).alias("delta"),
                              pl.col("issue_id").alias("id_delta"))  # fmt: skip
    ends = intervals.filter(pl.col("ended_at").is_not_null()).select(
        by, pl.col("ended_at").alias("at"), pl.lit(-1).alias("delta"),
        (-pl.col("issue_id")).alias("id_delta"),
    )  # fmt: skip
    edges = (
        pl.concat([starts, ends])
        .group_by(by, "at")
        .agg(pl.col("delta").sum(), pl.col("id_delta").sum())
        .sort(by, "at")
        .with_columns(
            pl.col("delta").cum_sum().over(by).alias("open_count"),
            pl.col("id_delta").cum_sum().over(by).alias("open_id_sum"),
        )
        .sort("at")
    )
    left = events.filter(pl.col(by).is_not_null()).sort("occurred_at")
    matched = left.join_asof(edges.select(by, "at", "open_count", "open_id_sum"),
                             left_on="occurred_at", right_on="at", by=by,
                             check_sortedness=False)  # fmt: skip
    return matched.select(
        "event_id",
        pl.col("open_count").fill_null(0).alias(f"{by}_open"),
        pl.when(pl.col("open_count") == 1).then(pl.col("open_id_sum")).alias(f"{by}_single"),
    )


def _latest_touch(events: pl.DataFrame, touches: pl.DataFrame) -> pl.DataFrame:
    grouped = (
        touches.group_by("session_key", "touched_at")
        .agg(pl.col("issue_id").n_unique().alias("touch_candidates"),
             pl.col("issue_id").min().alias("touch_issue"))
        .sort("touched_at")
    )  # fmt: skip
    left = events.filter(pl.col("session_key").is_not_null()).sort("occurred_at")
    matched = left.join_asof(grouped, left_on="occurred_at", right_on="touched_at",
                             by="session_key", check_sortedness=False)  # fmt: skip
    return matched.filter(pl.col("touched_at").is_not_null()).select(
        "event_id", "touch_issue", "touched_at", "touch_candidates"
    )


def _closed_since_touch(touched: pl.DataFrame, progress: pl.DataFrame) -> pl.DataFrame:
    """Per event, whether its touched issue is finished at the event's time: it left
    in-progress at or before the event (after the touch, or already before it) and has not
    been taken up again. A session that acts on a finished issue is not working on it now
    (reading an old card, closing it); an issue never seen on the board stays a candidate."""
    ends = (
        progress.filter(pl.col("ended_at").is_not_null())
        .select(pl.col("issue_id").alias("touch_issue"), pl.col("ended_at"))
        .unique()
        .sort("ended_at")
    )
    starts = (
        progress.select(pl.col("issue_id").alias("touch_issue"), pl.col("started_at"))
        .unique()
        .sort("started_at")
    )
    left = touched.filter(pl.col("touch_issue").is_not_null()).sort("occurred_at")
    matched = left.join_asof(ends, left_on="occurred_at", right_on="ended_at",
                             by="touch_issue", check_sortedness=False)  # fmt: skip
    matched = matched.join_asof(starts, left_on="occurred_at", right_on="started_at",
                                by="touch_issue", check_sortedness=False)  # fmt: skip
    # `>=` on the touch: the move that finishes an issue is itself a touch of it
    finished = pl.col("ended_at").is_not_null() & (
        pl.col("started_at").is_null() | (pl.col("started_at") <= pl.col("ended_at"))
    )
    return matched.select("event_id", finished.alias("touch_closed"))


def _nearest_commit(events: pl.DataFrame, commits: pl.DataFrame, window: timedelta) -> pl.DataFrame:
    """Per event, the session's next single-reference commit within the window; commits of
    the same session at the same instant naming different issues are a tie, so none of them
    decides."""
    single = (
        commits.group_by("session_key", "commit_hash", "committed_at")
        .agg(pl.col("issue_id").n_unique().alias("references"),
             pl.col("issue_id").min().alias("commit_issue"))
        .filter(pl.col("references") == 1)
        .group_by("session_key", "committed_at")
        .agg(pl.col("commit_issue").n_unique().alias("tied"),
             pl.col("commit_issue").min(), pl.col("commit_hash").min())
        .sort("committed_at")
    )  # fmt: skip
    left = events.filter(pl.col("session_key").is_not_null()).sort("occurred_at")
    matched = left.join_asof(single, left_on="occurred_at", right_on="committed_at",
                             by="session_key", strategy="forward", tolerance=window,
                             check_sortedness=False)  # fmt: skip
    decisive = pl.col("tied") == 1
    return matched.filter(pl.col("commit_issue").is_not_null()).select(
        "event_id",
        pl.when(decisive).then(pl.col("commit_issue")).alias("commit_issue"),
        pl.when(decisive).then(pl.col("commit_hash")).alias("commit_hash"),
        (~decisive).alias("commit_tied"),
    )


def attribute(
    events: pl.DataFrame,
    hints: pl.DataFrame,
    progress: pl.DataFrame,
    touches: pl.DataFrame,
    commits: pl.DataFrame,
    settings: AttributionSettings | None = None,
) -> pl.DataFrame:
    """One row per event: event_id, issue_id, signal, confidence, reason, hint_id,
    touched_at, commit_hash, engine_version."""
    settings = settings or AttributionSettings()
    base = events.select("event_id", "session_key", "agent_id", "project_id", "occurred_at")
    session_hint, session_claims = _latest_hint(base, hints, "session_key")
    session_hint = session_hint.rename(
        {"hint_issue": "s_hint_issue", "hint_id": "s_hint_id", "hint_candidates": "s_hint_n"}
    )
    agent_hint, agent_claims = _latest_hint(base, hints, "agent_id")
    agent_hint = agent_hint.rename(
        {"hint_issue": "a_hint_issue", "hint_id": "a_hint_id", "hint_candidates": "a_hint_n"}
    )
    # the session's own hint decides before the agent's, and so do its claims
    session_hinted = session_hint.get_column("event_id").implode()
    claims = pl.concat(
        [session_claims, agent_claims.filter(~pl.col("event_id").is_in(session_hinted))]
    )
    frame = (
        base.join(session_hint, on="event_id", how="left")
        .join(agent_hint, on="event_id", how="left")
        .join(_in_progress_counts(base, progress, "agent_id"), on="event_id", how="left")
        .join(_in_progress_counts(base, progress, "project_id"), on="event_id", how="left")
        .join(_latest_touch(base, touches), on="event_id", how="left")
        .join(_nearest_commit(base, commits, settings.commit_window), on="event_id", how="left")
    )
    frame = frame.join(
        _closed_since_touch(frame.select("event_id", "occurred_at", "touch_issue", "touched_at"),
                            progress),
        on="event_id", how="left",
    )  # fmt: skip
    window = pl.duration(seconds=settings.touch_window.total_seconds())
    fresh_touch = (
        pl.col("touched_at").is_not_null()
        & (pl.col("occurred_at") - pl.col("touched_at") <= window)
        & ~pl.col("touch_closed").fill_null(False)
    )
    # the session's own hint decides before the agent's
    hint_n = pl.coalesce("s_hint_n", "a_hint_n")
    hint_issue = (
        pl.when(pl.col("s_hint_n").is_not_null())
        .then(pl.col("s_hint_issue"))
        .otherwise(pl.col("a_hint_issue"))
    )
    hint_id = (
        pl.when(pl.col("s_hint_n").is_not_null())
        .then(pl.col("s_hint_id"))
        .otherwise(pl.col("a_hint_id"))
    )
    explicit = hint_n == 1
    # Claims of several issues at one instant do not decide, but they bound the candidates:
    # a later tier may pick one of the claimed issues, never another.
    hint_tie = (hint_n > 1).fill_null(False)
    tied = frame.select("event_id", "touch_issue", "commit_issue", hint_tie.alias("tie")).filter(
        "tie"
    )  # few rows: membership is worked out on them alone

    def within_claims(candidate: str) -> pl.Expr:
        claimed = tied.join(
            claims, left_on=["event_id", candidate], right_on=["event_id", "issue_id"], how="semi"
        ).get_column("event_id")
        return ~hint_tie | pl.col("event_id").is_in(claimed.implode())

    # The board does not pick among claimed issues: it speaks for the agent (or project),
    # and the session has said it serves several issues at once.
    agent_single = ~hint_tie & (pl.col("agent_id_open") == 1)
    # the project's lone issue speaks for an event only when its agent is unknown: a known
    # agent with nothing in progress is not working another agent's issue
    project_single = ~hint_tie & pl.col("agent_id").is_null() & (pl.col("project_id_open") == 1)
    touch = fresh_touch & (pl.col("touch_candidates") == 1) & within_claims("touch_issue")
    commit = pl.col("commit_issue").is_not_null() & within_claims("commit_issue")
    ambiguous = (
        (hint_n > 1)
        | (pl.col("agent_id_open") > 1)
        | (pl.col("agent_id").is_null() & (pl.col("project_id_open") > 1))
        | (fresh_touch & (pl.col("touch_candidates") > 1))
        | pl.col("commit_tied")
    ).fill_null(False)
    signal = (
        pl.when(explicit).then(pl.lit("explicit"))
        .when(agent_single).then(pl.lit("single-in-progress"))
        .when(project_single).then(pl.lit("single-in-progress"))
        .when(touch).then(pl.lit("session-recent-touch"))
        .when(commit).then(pl.lit("session-commit"))
        .otherwise(pl.lit("unattributed"))
    )  # fmt: skip
    issue = (
        pl.when(explicit).then(hint_issue)
        .when(agent_single).then(pl.col("agent_id_single"))
        .when(project_single).then(pl.col("project_id_single"))
        .when(touch).then(pl.col("touch_issue"))
        .when(commit).then(pl.col("commit_issue"))
    )  # fmt: skip
    confidence = (
        pl.when(explicit).then(CONFIDENCE["explicit"])
        .when(agent_single).then(CONFIDENCE["single-in-progress"])
        .when(project_single).then(CONFIDENCE["single-in-progress-project"])
        .when(touch).then(CONFIDENCE["session-recent-touch"])
        .when(commit).then(CONFIDENCE["session-commit"])
    )  # fmt: skip
    reason = (
        pl.when(pl.col("signal") != "unattributed").then(None)
        .when(ambiguous).then(pl.lit("ambiguous"))
        .when(pl.col("touched_at").is_not_null()).then(pl.lit("stale"))
        .otherwise(pl.lit("no-signal"))
    )  # fmt: skip
    decided = frame.with_columns(
        signal.alias("signal"),
        issue.cast(pl.Int64).alias("issue_id"),
        confidence.cast(pl.Float64).alias("confidence"),
        hint_id.alias("hint_id"),
        ambiguous.alias("ambiguous"),
    )
    return (
        decided.with_columns(reason.alias("reason"))
        .select(
            "event_id",
            "issue_id",
            "signal",
            "confidence",
            "reason",
            pl.when(pl.col("signal") == "explicit").then(pl.col("hint_id")).alias("hint_id"),
            pl.when(pl.col("signal") == "session-recent-touch")
            .then(pl.col("touched_at"))
            .alias("touched_at"),
            pl.when(pl.col("signal") == "session-commit")
            .then(pl.col("commit_hash"))
            .alias("commit_hash"),
            pl.lit(ENGINE_VERSION).alias("engine_version"),
        )
        .sort("event_id")
    )
