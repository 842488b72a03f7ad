"""Under which project and agent a request is reported: its session's, else its root
session's (a subagent's session is often linked to neither), the project by its name, else
by the working directory. One definition for the warehouse's extraction and the reports that
read the canonical store, so that `--project P` keeps the same requests in both."""

from __future__ import annotations

# `e` is token_usage_events; the joins name the session `s` and its root `r` (a session
# with no root recorded is its own)...
ROOT_SESSION_JOINS = """
JOIN agent_sessions AS s ON s.id = e.session_id
JOIN agent_sessions AS r ON r.id = COALESCE(s.root_session_id, s.id)"""
# ... then the project `p` and the agents `a` (the session's) and `ra` (the root's).
SESSION_LABEL_JOINS = (
    ROOT_SESSION_JOINS
    + """
LEFT JOIN projects AS p ON p.id = COALESCE(s.project_id, r.project_id)
LEFT JOIN agents AS a ON a.id = s.agent_id
LEFT JOIN agents AS ra ON ra.id = r.agent_id"""
)
PROJECT_LABEL = "COALESCE(p.name, r.project_path, s.project_path)"
AGENT_LABEL = "COALESCE(a.name, ra.name)"
