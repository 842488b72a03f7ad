"""Load a repository's history into the canonical store (see `ingestion/adapters/git.py`)."""

from __future__ import annotations

import hashlib
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psycopg

from ingestion.adapters.git import (
    DEFAULT_PATTERNS,
    SOURCE,
    Reference,
    read_commits,
    references,
)
from ingestion.correlation import correlate
from ingestion.git_commits import CommitRow, upsert_commits
from ingestion.loader import ensure_company
from ingestion.rejects import RejectRow, store_rejects
from ingestion.table_statistics import analyse_grown


class ProjectNotFound(LookupError):
    pass


@dataclass
class GitSummary:
    commits_seen: int = 0
    commits_new: int = 0
    references: int = 0
    links_new: int = 0
    unresolved: int = 0
    rejects: int = 0


def _project(conn: psycopg.Connection[Any], company_id: int, name: str | None, repo: Path
             ) -> int | None:  # fmt: skip
    """The project `#N` references are numbers of: named, else the one whose workspace is
    the repository."""
    if name is None:
        row = conn.execute(
            "SELECT id FROM projects WHERE company_id = %s AND workspace_path = %s",
            (company_id, str(repo)),
        ).fetchone()
        return row[0] if row else None
    row = conn.execute(
        """SELECT id FROM projects WHERE company_id = %s
             AND (name = %s OR key = %s OR external_id = %s) ORDER BY id LIMIT 1""",
        (company_id, name, name, name),
    ).fetchone()
    if row is None:
        raise ProjectNotFound(f"no project named {name!r} (by name, key or upstream id)")
    return row[0]


# Each reference's issue, all references at once (one hash join per way of naming): a query
# per reference, with the two ways ORed, read the company's issues each time (10,000
# references and 50,000 issues: 33 s a run, though nothing had changed).
RESOLVE_REFERENCES = """
WITH refs AS (
    SELECT * FROM unnest(%(text)s::text[], %(key)s::text[], %(number)s::bigint[])
        WITH ORDINALITY AS r(text, key, number, ordinal)
),
by_identifier AS (  -- KEY-N as an issue's identifier wins
    SELECT DISTINCT ON (r.ordinal) r.ordinal, i.id
    FROM refs AS r JOIN issues AS i ON i.company_id = %(company)s AND i.identifier = r.text
    WHERE r.key IS NOT NULL ORDER BY r.ordinal, i.id
),
by_project_key AS (  -- else N of the project whose key is KEY
    SELECT DISTINCT ON (r.ordinal) r.ordinal, i.id
    FROM refs AS r
    JOIN projects AS p ON p.company_id = %(company)s AND p.key = r.key
    JOIN issues AS i ON i.company_id = %(company)s AND i.project_id = p.id
     AND i.number = r.number
    ORDER BY r.ordinal, i.id
),
by_number AS (  -- #N: the number within the repository's project
    SELECT r.ordinal, i.id FROM refs AS r
    JOIN issues AS i ON i.project_id = %(project)s AND i.number = r.number
    WHERE r.key IS NULL
)
SELECT COALESCE(a.id, b.id, c.id) FROM refs AS r
LEFT JOIN by_identifier AS a USING (ordinal)
LEFT JOIN by_project_key AS b USING (ordinal)
LEFT JOIN by_number AS c USING (ordinal)
ORDER BY r.ordinal
"""


def _issues(conn: psycopg.Connection[Any], company_id: int, project_id: int | None,
            refs: list[Reference]) -> list[int | None]:  # fmt: skip
    """The issue each reference names, or None, in order: `#N` the number N within the
    project; `KEY-N` the issue with that identifier, else N of the project keyed KEY."""
    if not refs:
        return []
    rows = conn.execute(RESOLVE_REFERENCES, {
        "company": company_id, "project": project_id, "text": [r.text for r in refs],
        "key": [r.key for r in refs], "number": [r.number for r in refs],
    }).fetchall()  # fmt: skip
    return [row[0] for row in rows]


def load_git(
    conninfo: str,
    repo: Path,
    *,
    company: str,
    project: str | None = None,
    since: str | None = None,
    patterns: tuple[str, ...] = DEFAULT_PATTERNS,
) -> GitSummary:
    repo = repo.expanduser().resolve()
    history = read_commits(repo, since)
    summary = GitSummary(commits_seen=len(history.commits) + len(history.rejects),
                         rejects=len(history.rejects))  # fmt: skip
    with psycopg.connect(conninfo) as conn:
        company_id = ensure_company(conn, company)
        project_id = _project(conn, company_id, project, repo)
        run = conn.execute(
            """INSERT INTO ingestion_runs (source, started_at, arguments, host, pid)
               VALUES ('git', now(), %s, %s, pg_backend_pid()) RETURNING id""",
            (orjson.dumps({"repo": str(repo), "project": project}).decode(),
             socket.gethostname()),
        ).fetchone()  # fmt: skip
        assert run is not None
        with conn.transaction():
            with conn.cursor() as cur:
                store_rejects(cur, run[0], SOURCE, [
                    RejectRow(str(repo), r.hash, r.reason, r.header,
                              hashlib.sha1(r.header.encode()).hexdigest())
                    for r in history.rejects
                ])  # fmt: skip
                stored = upsert_commits(cur, company_id, [
                    CommitRow(project_id, str(repo), c.hash, c.author_name, c.author_email,
                              c.committed_at, c.message, c.files)
                    for c in history.commits
                ])  # fmt: skip
            summary.commits_new = stored.inserted
            cited: list[tuple[int, Reference]] = [  # (commit id, reference), in order
                (commit_id, ref)
                for commit, commit_id in zip(history.commits, stored.ids, strict=True)
                for ref in references(commit.message, patterns)
            ]
            issue_ids = _issues(conn, company_id, project_id, [ref for _, ref in cited])
            links = [(issue_id, commit_id, ref.text)
                     for (commit_id, ref), issue_id in zip(cited, issue_ids, strict=True)
                     if issue_id is not None]  # fmt: skip
            summary.references = len(cited)
            summary.unresolved = len(cited) - len(links)
            if links:
                summary.links_new = conn.execute(
                    """INSERT INTO issue_commit_links (company_id, issue_id, commit_id,
                           reference, link_source)
                       SELECT %s, issue_id, commit_id, reference, 'git-message'
                       FROM unnest(%s::bigint[], %s::bigint[], %s::text[])
                         WITH ORDINALITY AS l(issue_id, commit_id, reference, ordinal)
                       ORDER BY ordinal
                       ON CONFLICT (issue_id, commit_id) DO NOTHING""",
                    (company_id, *map(list, zip(*links, strict=True))),
                ).rowcount  # fmt: skip
        if summary.commits_new:
            analyse_grown(conn, {"git_commits": summary.commits_new,
                                 "issue_commit_links": summary.links_new})  # fmt: skip
            conn.commit()
            correlate(conn, company_id)  # which session printed each new commit
        conn.execute(
            """UPDATE ingestion_runs SET status = 'succeeded', finished_at = now(),
                   events_new = %s, events_merged = %s, rejects = %s WHERE id = %s""",
            (
                summary.commits_new,
                len(history.commits) - summary.commits_new,
                summary.rejects,
                run[0],
            ),
        )
    return summary
