"""`tally ingest git` against a real repository and a real database."""

from __future__ import annotations

import subprocess

import psycopg
import pytest
from typer.testing import CliRunner

from ingestion.adapters.git import read_commits, references
from pipelines.cli.main import app

runner = CliRunner()


def git(repo, *args, env=None):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


@pytest.fixture
def repo(tmp_path):
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "dev@example.com")
    git(path, "config", "user.name", "Dev")
    for name, message in (
        ("a.py", "Fix the parser (#12)"),
        ("b.py", "PAP-7: price the cache"),
        ("c.py", "Refs #12 and #99, see PAP-7"),
        ("d.py", "no reference"),
    ):
        (path / name).write_text(name)
        git(path, "add", name)
        git(path, "commit", "-q", "-m", message)
    return path


@pytest.fixture
def project(tally_env, conninfo):
    with psycopg.connect(conninfo) as conn:
        company = conn.execute(
            "INSERT INTO companies (slug, name) VALUES ('local', 'local') RETURNING id"
        ).fetchone()[0]
        project_id = conn.execute(
            """INSERT INTO projects (company_id, source, external_id, name, key)
               VALUES (%s, 'paperclip', 'p-1', 'billing', 'PAP') RETURNING id""",
            (company,),
        ).fetchone()[0]
        for number in (7, 12):
            conn.execute(
                """INSERT INTO issues (company_id, source, external_id, project_id, number,
                       identifier, title, status)
                   VALUES (%s, 'paperclip', %s, %s, %s, %s, 'work', 'todo')""",
                (company, f"i-{number}", project_id, number, f"PAP-{number}"),
            )
    return "billing"


def test_references_by_pattern():
    assert [r.text for r in references("Fix #3, PAP-12 and pap-4; url/#7 ABC-1")] == [
        "#3",
        "ABC-1",
        "PAP-12",
    ]


def test_commits_and_links_load_once(repo, project, conninfo):
    result = runner.invoke(app, ["ingest", "git", "--repo", str(repo), "--project", project])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "4 commits read, 4 new" in said
    assert "4 new links, 1 naming no known issue" in said  # #99
    versions = "SELECT hash, xmin::text FROM git_commits ORDER BY hash"
    with psycopg.connect(conninfo) as conn:
        before = conn.execute(versions).fetchall()
    again = runner.invoke(app, ["ingest", "git", "--repo", str(repo), "--project", project])
    assert "0 new; 5 issue references, 0 new links" in " ".join(again.output.split())
    with psycopg.connect(conninfo) as conn:
        assert conn.execute(versions).fetchall() == before  # no commit rewritten
        commits = conn.execute(
            "SELECT message, files, project_id IS NOT NULL FROM git_commits ORDER BY committed_at"
        ).fetchall()
        links = conn.execute(
            """SELECT i.identifier, l.reference, c.message FROM issue_commit_links l
               JOIN issues i ON i.id = l.issue_id JOIN git_commits c ON c.id = l.commit_id
               ORDER BY 1, 2"""
        ).fetchall()
    assert len(commits) == 4 and all(row[2] for row in commits)
    assert ["a.py"] in [row[1] for row in commits]
    assert [(row[0], row[1]) for row in links] == [
        ("PAP-12", "#12"),
        ("PAP-12", "#12"),
        ("PAP-7", "PAP-7"),
        ("PAP-7", "PAP-7"),
    ]


def test_a_key_reference_is_an_identifier_first_then_a_number_of_the_keyed_project(
    repo, project, conninfo
):
    """`OPS-3` is the issue whose identifier is OPS-3 even where a project keyed OPS has an
    issue 3; `OPS-4`, which no identifier is, is that project's issue 4."""
    with psycopg.connect(conninfo) as conn:
        company = conn.execute("SELECT id FROM companies").fetchone()[0]
        ops = conn.execute(
            "INSERT INTO projects (company_id, source, external_id, name, key) "
            "VALUES (%s, 'pigeon', 'p-ops', 'ops', 'OPS') RETURNING id",
            (company,),
        ).fetchone()[0]
        billing = conn.execute("SELECT id FROM projects WHERE key = 'PAP'").fetchone()[0]
        for external, project_id, number, identifier in (
            ("named", billing, 40, "OPS-3"), ("third", ops, 3, None), ("fourth", ops, 4, None),
        ):  # fmt: skip
            conn.execute(
                """INSERT INTO issues (company_id, source, external_id, project_id, number,
                       identifier, title, status)
                   VALUES (%s, 'pigeon', %s, %s, %s, %s, 'work', 'todo')""",
                (company, external, project_id, number, identifier),
            )
    git(repo, "commit", "-q", "--allow-empty", "-m", "OPS-3 and OPS-4 and #7 and OPS-99")
    result = runner.invoke(app, ["ingest", "git", "--repo", str(repo), "--project", project])
    assert result.exit_code == 0, result.output
    with psycopg.connect(conninfo) as conn:
        links = conn.execute(
            """SELECT l.reference, i.external_id FROM issue_commit_links l
               JOIN issues i ON i.id = l.issue_id JOIN git_commits c ON c.id = l.commit_id
               WHERE c.message LIKE 'OPS-3%%' ORDER BY 1"""
        ).fetchall()
    assert links == [("#7", "i-7"), ("OPS-3", "named"), ("OPS-4", "fourth")]


def test_bad_repository_and_unknown_project_fail_clearly(tmp_path, project, repo):
    missing = runner.invoke(app, ["ingest", "git", "--repo", str(tmp_path)])
    assert missing.exit_code == 2 and "not a git repository" in missing.output
    unknown = runner.invoke(app, ["ingest", "git", "--repo", str(repo), "--project", "nope"])
    assert unknown.exit_code == 2
    assert "no project named 'nope'" in " ".join(unknown.output.split())
    bad = runner.invoke(app, ["ingest", "git", "--repo", str(repo), "--pattern", "#\\d+"])
    assert bad.exit_code == 2
    # git reads a date it cannot parse as now: every commit would be silently left out
    typo = runner.invoke(app, ["ingest", "git", "--repo", str(repo), "--project", project,
                               "--since", "yesteday"])  # fmt: skip
    assert typo.exit_code == 2
    assert "--since 'yesteday' is not a date git understands" in " ".join(typo.output.split())
    since = runner.invoke(app, ["ingest", "git", "--repo", str(repo), "--project", project,
                                "--since", "2000-01-01"])  # fmt: skip
    assert since.exit_code == 0 and "0 commits read" not in since.output


def test_file_names_are_read_as_they_are_on_disk(repo):
    """git C-quotes names holding tabs, newlines, quotes or non-ASCII letters unless asked for
    NUL-terminated output; a name with a leading space must keep it."""
    names = ["tab\there.py", "new\nline.py", 'quo"te.py', "café.py", " lead.py"]
    for name in names:
        (repo / name).write_text(name)
    git(repo, "add", "--all")
    git(repo, "commit", "-q", "-m", "odd names")
    git(repo, "commit", "-q", "--allow-empty", "-m", "no files")
    commits = {commit.message: commit.files for commit in read_commits(repo).commits}
    assert commits["odd names"] == sorted(names)
    assert commits["no files"] == []
    assert commits["Fix the parser (#12)"] == ["a.py"]


def test_stashes_and_notes_are_no_commits_of_the_history(repo):
    """`git log --all` also walks refs/stash and refs/notes: a stash is two commits whose
    messages repeat the last commit's ("WIP on main: ... (#12)"), made when the work was
    put aside, and a note is a commit of its own; read as history they added references
    (and commit-signal links) that no commit of the project made. A detached HEAD and other
    branches stay in."""
    (repo / "a.py").write_text("changed")
    git(repo, "stash", "-q")
    git(repo, "notes", "add", "-m", "reviewed #12", "HEAD")
    git(repo, "checkout", "-q", "-b", "side")
    git(repo, "commit", "-q", "--allow-empty", "-m", "on a branch #12")
    git(repo, "checkout", "-q", "--detach", "main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "detached #12")
    messages = sorted(commit.message for commit in read_commits(repo).commits)
    assert messages == sorted([
        "Fix the parser (#12)", "PAP-7: price the cache", "Refs #12 and #99, see PAP-7",
        "no reference", "on a branch #12", "detached #12",
    ])  # fmt: skip


def test_a_message_holding_the_separator_bytes_is_read_whole(repo):
    """The log is split on \\x1e and \\x1f (plus a token drawn per run): a message may hold
    those bytes (git keeps them), and such a commit used to be dropped."""
    (repo / "e.py").write_text("e")
    git(repo, "add", "e.py")
    git(repo, "commit", "-q", "-m", "Odd\x1ebytes\x1f in #12")
    messages = [commit.message for commit in read_commits(repo).commits]
    assert "Odd\x1ebytes\x1f in #12" in messages and len(messages) == 5


def test_a_commit_time_python_cannot_hold_rejects_that_commit(repo, project, conninfo):
    """git keeps any 64-bit time (`@300000000000` is the year 11476), and such a commit made
    the whole command fail with a traceback: it is rejected with the reason, once, and the
    rest of the history loads."""
    import os

    (repo / "f.py").write_text("f")
    git(repo, "add", "f.py")
    far = "@300000000000 +0000"
    git(repo, "commit", "-q", "-m", "From the future, PAP-7",
        env={**os.environ, "GIT_AUTHOR_DATE": far, "GIT_COMMITTER_DATE": far})  # fmt: skip
    for _ in range(2):
        result = runner.invoke(app, ["ingest", "git", "--repo", str(repo), "--project", project])
        assert result.exit_code == 0, result.output
        said = " ".join(result.output.split())
        assert "5 commits read" in said and "1 commit rejected" in said
    with psycopg.connect(conninfo) as conn:
        stored = conn.execute("SELECT count(*) FROM git_commits").fetchone()
        rejects = conn.execute(
            "SELECT source, location, reason, excerpt FROM ingestion_rejects"
        ).fetchall()
    assert stored == (4,)
    [(source, location, reason, excerpt)] = rejects
    assert (source, location) == ("git", str(repo.resolve()))
    assert reason == (
        "commit time '11476-08-15T05:20:00+00:00' is no time tally can read (years 1 to 9999)"
    )
    assert "From the future, PAP-7" in excerpt
