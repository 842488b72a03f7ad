"""Store commits (`git_commits`) in bulk, for the git ingest and the work-graph loader: one
COPY into staging and one upsert, whatever their number."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import psycopg


class CommitRow(NamedTuple):
    project_id: int | None
    repo: str
    hash: str
    author_name: str | None
    author_email: str | None
    committed_at: datetime
    message: str
    files: list[str]


COLUMNS = CommitRow._fields


class StoredCommits(NamedTuple):
    ids: list[int]  # the id of each commit given, in the order given
    inserted: int  # commits new to the store
    changed: int  # new ones, and stored ones that gained a project


def upsert_commits(cur: psycopg.Cursor[Any], company_id: int,
                   commits: Sequence[CommitRow]) -> StoredCommits:  # fmt: skip
    """A commit already stored keeps what it has, but gains a project it had none of, and is
    not rewritten otherwise (an upsert per commit rewrote every commit on every run: 20,000
    commits took 9 s with nothing new). Of a commit given twice, the first copy naming a
    project is stored, else the first."""
    if not commits:
        return StoredCommits([], 0, 0)
    cur.execute(
        "CREATE TEMP TABLE stage_git_commits ON COMMIT DROP AS SELECT "
        f"{', '.join(COLUMNS)}, 0::bigint AS ord FROM git_commits WITH NO DATA"
    )
    with cur.copy(f"COPY stage_git_commits ({', '.join(COLUMNS)}, ord) FROM STDIN") as copy:
        for ord_, commit in enumerate(commits):
            copy.write_row((*commit, ord_))
    cur.execute(
        f"""INSERT INTO git_commits (company_id, {", ".join(COLUMNS)})
            SELECT %s, {", ".join(COLUMNS)} FROM (
                SELECT DISTINCT ON (repo, hash) * FROM stage_git_commits
                ORDER BY repo, hash, project_id IS NULL, ord) AS first_copy
            ORDER BY ord
            ON CONFLICT (company_id, repo, hash) DO UPDATE
              SET project_id = excluded.project_id
              WHERE git_commits.project_id IS NULL AND excluded.project_id IS NOT NULL
            RETURNING (xmax = 0) AS inserted""",
        (company_id,),
    )
    outcomes = [row[0] for row in cur.fetchall()]
    ids = dict(cur.execute(
        """SELECT s.ord, g.id FROM stage_git_commits AS s
           JOIN git_commits AS g ON g.company_id = %s AND g.repo = s.repo AND g.hash = s.hash""",
        (company_id,),
    ).fetchall())  # fmt: skip
    cur.execute("DROP TABLE stage_git_commits")
    return StoredCommits([ids[n] for n in range(len(commits))], sum(outcomes), len(outcomes))
