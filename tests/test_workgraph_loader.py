"""The work-graph loader on its own: what it writes for a graph, however the adapter built
it (duplicate keys, parents gained and lost, a second load of the same graph)."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from ingestion.workgraph.loader import load_work_graph
from ingestion.workgraph.records import WorkGraph


def at(hour: int) -> datetime:
    return datetime(2026, 11, 3, hour, tzinfo=UTC)


def issue(external_id: str, title: str, parent: str | None = None) -> dict:
    return {"external_id": external_id, "title": title, "status": "todo", "parent": parent,
            "number": int(external_id.removeprefix("i")), "created_at": at(9)}  # fmt: skip


def change(external_id: str, issue_id: str, to_status: str, hour: int) -> dict:
    return {"external_id": external_id, "issue": issue_id, "from_status": None,
            "to_status": to_status, "changed_at": at(hour), "actor_type": "agent"}  # fmt: skip


def load(conninfo: str, graph: WorkGraph) -> dict[str, int]:
    """The load's changes, by table (tables it changed nothing in left out)."""
    summary = load_work_graph(conninfo, graph, company="acme", source="paperclip",
                              location="test")  # fmt: skip
    return {table: count for table, count in summary.changed.items() if count}


def test_a_key_given_twice_keeps_its_last_copy_and_rows_take_ids_in_order(conninfo):
    """Adapters may hand a record twice (an upstream without a unique key); the last copy
    wins, as when each row was written on its own, and nothing fails."""
    graph = WorkGraph(
        issues=[issue("i1", "first draft", parent="i2"), issue("i2", "other"),
                issue("i1", "final")],
        status_changes=[change("c3", "i1", "in_progress", 10), change("c1", "i1", "done", 10),
                        change("c2", "i2", "todo", 11)],
    )  # fmt: skip
    changed = load(conninfo, graph)
    with psycopg.connect(conninfo) as conn:
        titles = conn.execute("SELECT external_id, title FROM issues ORDER BY 1").fetchall()
        parents = conn.execute("SELECT count(*) FROM issues WHERE parent_id IS NOT NULL").fetchone()
        order = [r[0] for r in conn.execute(
            "SELECT external_id FROM issue_status_changes ORDER BY id")]  # fmt: skip
    assert titles == [("i1", "final"), ("i2", "other")]
    assert parents == (0,)  # the last copy names no parent
    # two changes of one issue at one instant: the id order (the tie-break of the
    # in-progress intervals) is the upstream's order
    assert order == ["c3", "c1", "c2"]
    assert changed["issues"] == 2 and changed["issue_status_changes"] == 3


def test_a_second_load_changes_nothing_and_an_edit_changes_one_row(conninfo):
    graph = WorkGraph(issues=[issue("i1", "one"), issue("i2", "two", parent="i1")])
    load(conninfo, graph)
    assert load(conninfo, graph) == {}
    graph.issues[0]["title"] = "one, renamed"
    assert load(conninfo, graph) == {"issues": 1}


def test_parents_are_set_and_cleared_with_the_upstream(conninfo):
    graph = WorkGraph(issues=[issue("i1", "epic"), issue("i2", "task", parent="i1"),
                              issue("i3", "loose", parent="i404")])  # fmt: skip
    load(conninfo, graph)
    query = """SELECT c.external_id, p.external_id FROM issues AS c
               LEFT JOIN issues AS p ON p.id = c.parent_id ORDER BY 1"""
    with psycopg.connect(conninfo) as conn:
        assert conn.execute(query).fetchall() == [("i1", None), ("i2", "i1"), ("i3", None)]
    graph.issues[1]["parent"] = None
    graph.issues[0]["parent"] = "i3"
    assert load(conninfo, graph) == {"issues": 2}
    with psycopg.connect(conninfo) as conn:
        assert conn.execute(query).fetchall() == [("i1", "i3"), ("i2", None), ("i3", None)]


def commit(hash_: str, project: str | None, *links: str) -> dict:
    cited = [(link, f"#{link.removeprefix('i')}", "pigeon-gitlink") for link in links]
    return {"repo": "/w/shop", "hash": hash_, "project": project, "committed_at": at(12),
            "message": f"work on {', '.join(links)}", "author_name": "Dev", "files": ["a.py"],
            "links": cited}  # fmt: skip


def test_commits_and_their_links_load_once_and_gain_a_project_they_lacked(conninfo):
    project = {"external_id": "p1", "name": "Shop"}
    graph = WorkGraph(
        projects=[project],
        issues=[issue("i1", "one"), issue("i2", "two")],
        commits=[commit("a" * 40, None, "i1"), commit("b" * 40, None, "i1", "i2", "i404"),
                 commit("a" * 40, "p1", "i2")],  # given twice: the copy naming a project
    )  # fmt: skip
    changed = load(conninfo, graph)
    query = """SELECT g.hash, p.name, g.files, array_agg(l.reference ORDER BY l.reference)
               FROM git_commits AS g LEFT JOIN projects AS p ON p.id = g.project_id
               LEFT JOIN issue_commit_links AS l ON l.commit_id = g.id
               GROUP BY 1, 2, 3 ORDER BY 1"""
    with psycopg.connect(conninfo) as conn:
        assert conn.execute(query).fetchall() == [
            ("a" * 40, "Shop", ["a.py"], ["#1", "#2"]),
            ("b" * 40, None, ["a.py"], ["#1", "#2"]),
        ]
    assert changed["git_commits"] == 2 and changed["issue_commit_links"] == 4
    assert load(conninfo, graph) == {}
    graph.commits[1]["project"] = "p1"  # a project named later is taken...
    assert load(conninfo, graph) == {"git_commits": 1}
    graph.commits[1]["project"] = None  # ...and kept when the upstream forgets it
    assert load(conninfo, graph) == {}
    with psycopg.connect(conninfo) as conn:
        assert [row[1] for row in conn.execute(query)] == ["Shop", "Shop"]
