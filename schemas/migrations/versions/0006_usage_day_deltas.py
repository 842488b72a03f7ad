"""usage events: per-day totals kept by triggers, so freshness checks stop scanning events

Every report and every materialisation compared the warehouse with the canonical store by
summing the stored events of each day: O(events) on every command (250 ms of a 3 s report
at 175,000 events; 3 s at 10 million). Statement-level triggers now append, for each
statement that inserts, updates or deletes events, one row per UTC day it changed, with the
signed change in requests and tokens (`usage_day_deltas`). Readers sum those rows; ingestion
runs fold them after each run, and the API now and then (`ingestion/usage_day_deltas.py`).
Appending instead of updating one row per day keeps concurrent loaders from queueing on (and
deadlocking over) the same day's row.

Pigeon-style per-session rollups (origin `session_rollup`) are left out: whether one counts
depends on other rows (schemas/usage_rules.py), so readers add the few that count live.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TOKENS = (
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cache_read_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
)
_DAY = "(occurred_at AT TIME ZONE 'UTC')::date"
_SIGNED_SUMS = [f"sum(sign * {t})" for t in TOKENS]
_COLUMNS = ", ".join(("day", "requests", *TOKENS))


def _changed(rows: str) -> str:
    """The signed rows of a transition table (`new_rows` +1, `old_rows` -1) that count."""
    sign = "1" if rows == "new_rows" else "-1"
    return (
        f"SELECT {_DAY} AS day, {sign} AS sign, {', '.join(TOKENS)} FROM {rows} "
        "WHERE origin <> 'session_rollup'"
    )


def _append(changed: str) -> str:
    return f"""
        INSERT INTO usage_day_deltas ({_COLUMNS})
        SELECT day, sum(sign), {", ".join(_SIGNED_SUMS)}
        FROM ({changed}) AS changed
        GROUP BY day
        HAVING {" OR ".join(f"{total} <> 0" for total in ["sum(sign)", *_SIGNED_SUMS])}
        ORDER BY day;"""


FUNCTION = f"""
CREATE FUNCTION usage_day_deltas_append() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN{_append(_changed("new_rows"))}
    ELSIF TG_OP = 'DELETE' THEN{_append(_changed("old_rows"))}
    ELSE{_append(_changed("new_rows") + " UNION ALL " + _changed("old_rows"))}
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION usage_day_deltas_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM usage_day_deltas;
    RETURN NULL;
END $$;
"""

TRIGGERS = {
    "usage_day_deltas_on_insert": "AFTER INSERT ON token_usage_events "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT",
    "usage_day_deltas_on_update": "AFTER UPDATE ON token_usage_events "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT",
    "usage_day_deltas_on_delete": "AFTER DELETE ON token_usage_events "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT",
}


def upgrade() -> None:
    op.create_table(
        "usage_day_deltas",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        *(sa.Column(token, sa.BigInteger(), nullable=False) for token in TOKENS),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_day_deltas")),
    )
    op.create_index(op.f("ix_usage_day_deltas_day"), "usage_day_deltas", ["day"])
    op.execute(FUNCTION)
    for name, when in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION usage_day_deltas_append()")
    op.execute(
        "CREATE TRIGGER usage_day_deltas_on_truncate AFTER TRUNCATE ON token_usage_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION usage_day_deltas_clear()"
    )
    # the events already stored, as one row per day
    op.execute(
        f"INSERT INTO usage_day_deltas ({_COLUMNS}) SELECT {_DAY}, count(*), "
        f"{', '.join(f'sum({t})' for t in TOKENS)} "
        "FROM token_usage_events WHERE origin <> 'session_rollup' GROUP BY 1 ORDER BY 1"
    )


def downgrade() -> None:
    for name in (*TRIGGERS, "usage_day_deltas_on_truncate"):
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON token_usage_events")
    op.execute("DROP FUNCTION IF EXISTS usage_day_deltas_append()")
    op.execute("DROP FUNCTION IF EXISTS usage_day_deltas_clear()")
    op.drop_index(op.f("ix_usage_day_deltas_day"), table_name="usage_day_deltas")
    op.drop_table("usage_day_deltas")
