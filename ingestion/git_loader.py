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
from ingestion.loader import INSERT_REJECT, ensure_company


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
             ) -> tuple[int | None, str | None]:  # fmt: skip
    if name is None:
        row = conn.execute(
            "SELECT id, key FROM projects WHERE company_id = %s AND workspace_path = %s",
            (company_id, str(repo)),
        ).fetchone()
        return (row[0], row[1]) if row else (None, None)
    row = conn.execute(
        """SELECT id, key FROM projects WHERE company_id = %s
             AND (name = %s OR key = %s OR external_id = %s) ORDER BY id LIMIT 1""",
        (company_id, name, name, name),
    ).fetchone()
    if row is None:
        raise ProjectNotFound(f"no project named {name!r} (by name, key or upstream id)")
    return row[0], row[1]


def _issue(conn: psycopg.Connection[Any], company_id: int, project_id: int | None,
           project_key: str | None, ref: Reference) -> int | None:  # fmt: skip
    if ref.key is None:
        if project_id is None:
            return None
        row = conn.execute(
            "SELECT id FROM issues WHERE project_id = %s AND number = %s",
            (project_id, ref.number),
        ).fetchone()
        return row[0] if row else None
    row = conn.execute(
        """SELECT i.id FROM issues AS i LEFT JOIN projects AS p ON p.id = i.project_id
           WHERE i.company_id = %s
             AND (i.identifier = %s OR (p.key = %s AND i.number = %s))
           ORDER BY (i.identifier = %s) DESC LIMIT 1""",
        (company_id, ref.text, ref.key, ref.number, ref.text),
    ).fetchone()
    return row[0] if row else None


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
        project_id, project_key = _project(conn, company_id, project, repo)
        run = conn.execute(
            """INSERT INTO ingestion_runs (source, started_at, arguments, host, pid)
               VALUES ('git', now(), %s, %s, pg_backend_pid()) RETURNING id""",
            (orjson.dumps({"repo": str(repo), "project": project}).decode(),
             socket.gethostname()),
        ).fetchone()  # fmt: skip
        assert run is not None
        with conn.transaction():
            for rejected in history.rejects:
                conn.execute(INSERT_REJECT, (
                    run[0], SOURCE, str(repo), rejected.hash, rejected.reason, rejected.header,
                    hashlib.sha1(rejected.header.encode()).hexdigest(),
                ))  # fmt: skip
            for commit in history.commits:
                row = conn.execute(
                    """INSERT INTO git_commits (company_id, project_id, repo, hash, author_name,
                           author_email, committed_at, message, files)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
                       ON CONFLICT (company_id, repo, hash) DO UPDATE
                         SET project_id = COALESCE(git_commits.project_id, excluded.project_id)
                       RETURNING id, (xmax = 0)""",
                    (company_id, project_id, str(repo), commit.hash, commit.author_name,
                     commit.author_email, commit.committed_at, commit.message, commit.files),
                ).fetchone()  # fmt: skip
                assert row is not None
                commit_id, inserted = row
                summary.commits_new += int(inserted)
                for ref in references(commit.message, patterns):
                    summary.references += 1
                    issue_id = _issue(conn, company_id, project_id, project_key, ref)
                    if issue_id is None:
                        summary.unresolved += 1
                        continue
                    linked = conn.execute(
                        """INSERT INTO issue_commit_links (company_id, issue_id, commit_id,
                               reference, link_source)
                           VALUES (%s, %s, %s, %s, 'git-message')
                           ON CONFLICT (issue_id, commit_id) DO NOTHING""",
                        (company_id, issue_id, commit_id, ref.text),
                    )  # fmt: skip
                    summary.links_new += linked.rowcount
        if summary.commits_new:
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
