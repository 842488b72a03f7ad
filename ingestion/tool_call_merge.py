"""How a tool call's row takes in another report of the same call (the same company, source
and call id): a transcript's `tool_use` and its `tool_result`, read in either order, or a
hook's two posts (its start, then its end and outcome). Each report fills in what the row
lacks (the tool's name, where the first report was the result) and widens what grows: the
earliest start and end, the duration of that span (else the one reported), the largest
result, the union of files, commits and issues. Nothing known is overwritten but by the
outcome a transcript tells. Shared by the transcript loader and the API."""

# The SET clauses of `ON CONFLICT (company_id, source, call_key) DO UPDATE`, with the stored
# row as `t`; each writer adds its own rule for `success` (the transcript's outcome is what
# the model read, and wins; a hook's fills in only what is missing).
WIDEN_TOOL_CALL = """
    tool_name = COALESCE(t.tool_name, excluded.tool_name),
    mcp_server = COALESCE(t.mcp_server, excluded.mcp_server),
    started_at = LEAST(t.started_at, excluded.started_at),
    ended_at = LEAST(t.ended_at, excluded.ended_at),
    duration_ms = COALESCE((EXTRACT(EPOCH FROM LEAST(t.ended_at, excluded.ended_at)
                                    - LEAST(t.started_at, excluded.started_at)) * 1000)::bigint,
                           t.duration_ms, excluded.duration_ms),
    error_message = COALESCE(t.error_message, excluded.error_message),
    result_chars = GREATEST(t.result_chars, excluded.result_chars),
    result_tokens_estimate = GREATEST(t.result_tokens_estimate, excluded.result_tokens_estimate),
    file_paths = ARRAY(SELECT DISTINCT unnest(t.file_paths || excluded.file_paths) ORDER BY 1),
    commit_hashes = ARRAY(SELECT DISTINCT unnest(t.commit_hashes || excluded.commit_hashes)
                          ORDER BY 1),
    issue_refs = ARRAY(SELECT DISTINCT unnest(t.issue_refs || excluded.issue_refs) ORDER BY 1),
    updated_at = now()"""

# Whether `excluded` adds anything to `t` under WIDEN_TOOL_CALL (a retry adds nothing).
ADDS_TO_TOOL_CALL = """(
    (t.tool_name IS NULL AND excluded.tool_name IS NOT NULL)
    OR (t.mcp_server IS NULL AND excluded.mcp_server IS NOT NULL)
    OR t.started_at IS NULL OR excluded.started_at < t.started_at
    OR (excluded.ended_at IS NOT NULL AND (t.ended_at IS NULL OR excluded.ended_at < t.ended_at))
    OR (t.duration_ms IS NULL AND excluded.duration_ms IS NOT NULL)
    OR (t.success IS NULL AND excluded.success IS NOT NULL)
    OR (t.error_message IS NULL AND excluded.error_message IS NOT NULL)
    OR excluded.result_chars > COALESCE(t.result_chars, -1)
    OR excluded.result_tokens_estimate > COALESCE(t.result_tokens_estimate, -1)
    OR NOT t.file_paths @> excluded.file_paths
    OR NOT t.commit_hashes @> excluded.commit_hashes
    OR NOT t.issue_refs @> excluded.issue_refs)"""
