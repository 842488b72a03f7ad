"""A PostgreSQL database with Paperclip's real table shapes (the columns tally reads and
their neighbours: uuid keys, text statuses, integer cents, jsonb details and context) and a
small company whose rows exercise every mapping rule and every reject."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

DDL = """
CREATE TABLE companies (id uuid PRIMARY KEY, name text NOT NULL, description text,
  status text NOT NULL DEFAULT 'active', issue_prefix text NOT NULL DEFAULT 'PAP',
  issue_counter int NOT NULL DEFAULT 0, budget_monthly_cents int NOT NULL DEFAULT 0,
  spent_monthly_cents int NOT NULL DEFAULT 0, created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE agents (id uuid PRIMARY KEY, company_id uuid NOT NULL REFERENCES companies,
  name text NOT NULL, role text NOT NULL DEFAULT 'general', title text, icon text,
  status text NOT NULL DEFAULT 'idle', reports_to uuid REFERENCES agents, capabilities text,
  adapter_type text NOT NULL DEFAULT 'process', adapter_config jsonb NOT NULL DEFAULT '{}',
  runtime_config jsonb NOT NULL DEFAULT '{}', budget_monthly_cents int NOT NULL DEFAULT 0,
  spent_monthly_cents int NOT NULL DEFAULT 0, metadata jsonb,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE goals (id uuid PRIMARY KEY, company_id uuid NOT NULL REFERENCES companies,
  title text NOT NULL, description text, level text NOT NULL DEFAULT 'task',
  status text NOT NULL DEFAULT 'planned', parent_id uuid REFERENCES goals,
  owner_agent_id uuid REFERENCES agents, created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE projects (id uuid PRIMARY KEY, company_id uuid NOT NULL REFERENCES companies,
  goal_id uuid REFERENCES goals, name text NOT NULL, description text,
  status text NOT NULL DEFAULT 'backlog', lead_agent_id uuid REFERENCES agents,
  archived_at timestamptz, created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE heartbeat_runs (id uuid PRIMARY KEY, company_id uuid NOT NULL REFERENCES companies,
  agent_id uuid NOT NULL REFERENCES agents, invocation_source text NOT NULL DEFAULT 'on_demand',
  trigger_detail text, status text NOT NULL DEFAULT 'queued', started_at timestamptz,
  finished_at timestamptz, error text, error_code text, exit_code int, signal text,
  usage_json jsonb, result_json jsonb, session_id_before text, session_id_after text,
  context_snapshot jsonb, created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE issues (id uuid PRIMARY KEY, company_id uuid NOT NULL REFERENCES companies,
  project_id uuid REFERENCES projects, goal_id uuid REFERENCES goals,
  parent_id uuid REFERENCES issues, issue_number int, identifier text UNIQUE,
  title text NOT NULL, description text, status text NOT NULL DEFAULT 'backlog',
  priority text NOT NULL DEFAULT 'medium', work_mode text NOT NULL DEFAULT 'standard',
  assignee_agent_id uuid REFERENCES agents, created_by_agent_id uuid,
  checkout_run_id uuid REFERENCES heartbeat_runs, execution_run_id uuid REFERENCES heartbeat_runs,
  origin_kind text NOT NULL DEFAULT 'manual', billing_code text, started_at timestamptz,
  completed_at timestamptz, cancelled_at timestamptz, hidden_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE heartbeat_run_events (id bigserial PRIMARY KEY,
  company_id uuid NOT NULL REFERENCES companies, run_id uuid NOT NULL REFERENCES heartbeat_runs,
  agent_id uuid NOT NULL, seq int NOT NULL, event_type text NOT NULL, stream text, level text,
  color text, message text, payload jsonb, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE activity_log (id uuid PRIMARY KEY, company_id uuid NOT NULL REFERENCES companies,
  actor_type text NOT NULL DEFAULT 'system', actor_id text NOT NULL, action text NOT NULL,
  entity_type text NOT NULL, entity_id text NOT NULL, agent_id uuid REFERENCES agents,
  run_id uuid REFERENCES heartbeat_runs, responsible_user_id text, details jsonb,
  created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE cost_events (id uuid PRIMARY KEY, company_id uuid NOT NULL REFERENCES companies,
  agent_id uuid NOT NULL REFERENCES agents, issue_id uuid REFERENCES issues,
  project_id uuid REFERENCES projects, goal_id uuid REFERENCES goals,
  heartbeat_run_id uuid REFERENCES heartbeat_runs, billing_code text, provider text NOT NULL,
  biller text NOT NULL DEFAULT 'unknown', billing_type text NOT NULL DEFAULT 'unknown',
  cost_status text NOT NULL DEFAULT 'reported', model text NOT NULL,
  input_tokens int NOT NULL DEFAULT 0, cached_input_tokens int NOT NULL DEFAULT 0,
  output_tokens int NOT NULL DEFAULT 0, cost_cents int NOT NULL, occurred_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE finance_events (id uuid PRIMARY KEY, company_id uuid NOT NULL REFERENCES companies,
  agent_id uuid, issue_id uuid, project_id uuid, goal_id uuid, heartbeat_run_id uuid,
  cost_event_id uuid, billing_code text, description text, event_kind text NOT NULL,
  direction text NOT NULL DEFAULT 'debit', biller text NOT NULL, provider text, model text,
  quantity int, unit text, amount_cents int NOT NULL, currency text NOT NULL DEFAULT 'USD',
  estimated boolean NOT NULL DEFAULT false, external_invoice_id text, metadata_json jsonb,
  occurred_at timestamptz NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE budget_policies (id uuid PRIMARY KEY, company_id uuid NOT NULL REFERENCES companies,
  scope_type text NOT NULL, scope_id uuid NOT NULL, metric text NOT NULL DEFAULT 'billed_cents',
  window_kind text NOT NULL, amount int NOT NULL DEFAULT 0, warn_percent int NOT NULL DEFAULT 80,
  hard_stop_enabled boolean NOT NULL DEFAULT true, notify_enabled boolean NOT NULL DEFAULT true,
  is_active boolean NOT NULL DEFAULT true, created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE approvals (id uuid PRIMARY KEY, company_id uuid NOT NULL REFERENCES companies,
  type text NOT NULL, requested_by_agent_id uuid, requested_by_user_id text,
  status text NOT NULL DEFAULT 'pending', payload jsonb NOT NULL DEFAULT '{}', decision_note text,
  decided_by_user_id text, decided_at timestamptz, created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE budget_incidents (id uuid PRIMARY KEY, company_id uuid NOT NULL REFERENCES companies,
  policy_id uuid NOT NULL REFERENCES budget_policies, scope_type text NOT NULL,
  scope_id uuid NOT NULL, metric text NOT NULL, window_kind text NOT NULL,
  window_start timestamptz NOT NULL, window_end timestamptz NOT NULL, threshold_type text NOT NULL,
  amount_limit int NOT NULL, amount_observed int NOT NULL, status text NOT NULL DEFAULT 'open',
  approval_id uuid REFERENCES approvals, resolved_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
"""


def uid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


ACME, OTHER = uid(1), uid(2)
ENGINEER, CEO = uid(11), uid(12)
LAUNCH, BILLING_GOAL = uid(21), uid(22)
BILLING = uid(31)
PAP_1, PAP_2, PAP_3 = uid(41), uid(42), uid(43)
RUN_1, RUN_BAD_STATUS, RUN_GHOST_ISSUE = uid(51), uid(52), uid(53)
POLICY, POLICY_WEEKLY = uid(61), uid(62)
DAY = "2026-11-03"


def at(clock: str) -> str:
    return f"{DAY}T{clock}:00Z"


def insert(conn: psycopg.Connection[Any], table: str, **values: Any) -> None:
    columns = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                 [Jsonb(v) if isinstance(v, dict) else v for v in values.values()])  # fmt: skip


def build_paperclip_db(conninfo: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(DDL)
        insert(conn, "companies", id=ACME, name="Acme", issue_prefix="PAP")
        insert(conn, "companies", id=OTHER, name="Other", issue_prefix="OTH")
        insert(conn, "agents", id=CEO, company_id=ACME, name="Ada", role="ceo")
        insert(conn, "agents", id=ENGINEER, company_id=ACME, name="Eng", role="engineer",
               reports_to=CEO, adapter_type="claude_local",
               adapter_config={"cwd": "/srv/billing"})  # fmt: skip
        insert(conn, "goals", id=LAUNCH, company_id=ACME, title="Launch", level="company")
        insert(conn, "goals", id=BILLING_GOAL, company_id=ACME, title="Bill customers",
               parent_id=LAUNCH, owner_agent_id=CEO)  # fmt: skip
        insert(conn, "projects", id=BILLING, company_id=ACME, name="Billing", goal_id=BILLING_GOAL)
        insert(conn, "heartbeat_runs", id=RUN_1, company_id=ACME, agent_id=ENGINEER,
               status="succeeded", started_at=at("10:00"), finished_at=at("11:00"),
               session_id_after="cc-run-1", context_snapshot={"issueId": PAP_1},
               usage_json={"inputTokens": 10, "outputTokens": 20})  # fmt: skip
        insert(conn, "heartbeat_runs", id=RUN_BAD_STATUS, company_id=ACME, agent_id=ENGINEER,
               status="exploded", started_at=at("12:00"))  # fmt: skip
        insert(
            conn,
            "heartbeat_runs",
            id=RUN_GHOST_ISSUE,
            company_id=ACME,
            agent_id=ENGINEER,
            status="failed",
            started_at=at("13:00"),
            context_snapshot={"issueId": uid(99)},
        )
        insert(conn, "issues", id=PAP_1, company_id=ACME, project_id=BILLING, issue_number=1,
               identifier="PAP-1", title="Invoice PDF", status="done",
               assignee_agent_id=ENGINEER, started_at=at("09:55"), completed_at=at("11:00"),
               created_at=at("09:00"))  # fmt: skip
        insert(conn, "issues", id=PAP_2, company_id=ACME, project_id=BILLING, issue_number=2,
               identifier="PAP-2", title="Dunning", status="in_progress",
               assignee_agent_id=ENGINEER, started_at=at("14:00"),
               created_at=at("09:00"))  # fmt: skip
        insert(
            conn,
            "issues",
            id=PAP_3,
            company_id=ACME,
            project_id=BILLING,
            issue_number=3,
            identifier="PAP-3",
            title="Tax",
            status="wontfix",
            created_at=at("09:00"),
        )
        insert(conn, "issues", id=uid(44), company_id=OTHER, issue_number=1, identifier="OTH-1",
               title="Elsewhere", status="todo")  # fmt: skip
        for n, clock, action, details, run in (
            (71, "09:55", "issue.updated",
             {"status": "in_progress", "_previous": {"status": "todo"}}, RUN_1),
            (72, "10:30", "issue.comment_added", {"commentId": "x"}, RUN_1),
            (73, "11:00", "issue.updated", {"changes": {"status": {"from": "in_progress",
                                                                   "to": "done"}}}, RUN_1),
            (74, "12:00", "issue.updated", {"status": "limbo"}, None),
        ):  # fmt: skip
            insert(conn, "activity_log", id=uid(n), company_id=ACME, actor_type="agent",
                   actor_id=ENGINEER, action=action, entity_type="issue",
                   entity_id=PAP_1 if n != 74 else PAP_2, agent_id=ENGINEER, run_id=run,
                   details=details, created_at=at(clock))  # fmt: skip
        insert(conn, "activity_log", id=uid(75), company_id=ACME, actor_type="user",
               actor_id="u1", action="issue.updated", entity_type="issue", entity_id=uid(98),
               details={"title": "renamed"}, created_at=at("12:30"))  # fmt: skip
        for seq in (1, 2):
            insert(conn, "heartbeat_run_events", company_id=ACME, run_id=RUN_1,
                   agent_id=ENGINEER, seq=seq, event_type="lifecycle", stream="system",
                   level="info", message=f"step {seq}",
                   created_at=at(f"10:0{seq}"))  # fmt: skip
        insert(conn, "heartbeat_run_events", company_id=ACME, run_id=RUN_BAD_STATUS,
               agent_id=ENGINEER, seq=1, event_type="error", created_at=at("12:00"))  # fmt: skip
        insert(conn, "cost_events", id=uid(81), company_id=ACME, agent_id=ENGINEER,
               issue_id=PAP_1, project_id=BILLING, heartbeat_run_id=RUN_1, provider="anthropic",
               biller="anthropic", billing_type="metered_api", model="claude-sonnet-4-5",
               input_tokens=10, output_tokens=20, cost_cents=123,
               occurred_at=at("11:00"))  # fmt: skip
        insert(conn, "cost_events", id=uid(82), company_id=ACME, agent_id=ENGINEER,
               provider="anthropic", model="claude-sonnet-4-5", cost_cents=-5,
               occurred_at=at("11:05"))  # fmt: skip
        insert(conn, "finance_events", id=uid(85), company_id=ACME, event_kind="platform_fee",
               direction="debit", biller="anthropic", amount_cents=5000,
               occurred_at=at("00:00"))  # fmt: skip
        insert(
            conn,
            "budget_policies",
            id=POLICY,
            company_id=ACME,
            scope_type="agent",
            scope_id=ENGINEER,
            window_kind="calendar_month_utc",
            amount=10000,
        )
        insert(conn, "budget_policies", id=POLICY_WEEKLY, company_id=ACME, scope_type="agent",
               scope_id=ENGINEER, window_kind="weekly", amount=100)  # fmt: skip
        insert(conn, "approvals", id=uid(91), company_id=ACME, type="budget_override_required",
               requested_by_agent_id=ENGINEER, payload={"policyId": POLICY})  # fmt: skip
        insert(conn, "approvals", id=uid(92), company_id=ACME, type="hire_agent", status="maybe")
        insert(conn, "budget_incidents", id=uid(95), company_id=ACME, policy_id=POLICY,
               scope_type="agent", scope_id=ENGINEER, metric="billed_cents",
               window_kind="calendar_month_utc", window_start="2026-11-01T00:00:00Z",
               window_end="2026-12-01T00:00:00Z", threshold_type="soft", amount_limit=10000,
               amount_observed=8123)  # fmt: skip
