"""API keys: created for a company (and an agent, for agent keys), shown once, stored as a
SHA-256 digest with a short public prefix for lookup. Keys are 256-bit random secrets, so a
fast digest is enough (there is nothing to brute-force), and lookups stay cheap per request.

Format: `tly_<prefix>_<secret>`, prefix 12 hex characters, secret 43 URL-safe characters."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import psycopg

from ingestion.loader import ensure_company

ROLES = ("agent", "board", "service")
KEY_PATTERN = re.compile(r"^tly_(?P<prefix>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{20,})$")


class KeyProblem(ValueError):
    """A key cannot be created or changed; the message says why."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key and the scope it grants."""

    key_id: int
    company_id: int
    agent_id: int | None
    role: str


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class NewKey(NamedTuple):
    id: int
    key: str  # shown once: only its digest is stored
    created: tuple[str, ...] = ()  # what the key's creation also created ("company 'x'")


def create_key(conn: psycopg.Connection[Any], company: str, role: str, agent: str | None = None,
               name: str | None = None) -> NewKey:  # fmt: skip
    """The key, which is never stored. The company is created if needed; an agent key's agent
    must exist or is created by name. What was created is named, so that a misspelt company
    or agent does not go unnoticed behind a key that can see nothing."""
    if role not in ROLES:
        raise KeyProblem(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    company, agent = company.strip(), (agent or "").strip() or None
    if not company:
        raise KeyProblem("the company must not be blank")
    for label, value in (("company", company), ("agent", agent)):
        if value is not None and not value.isprintable():
            raise KeyProblem(f"the {label} {value!r} contains control characters")
    if role == "agent" and not agent:
        raise KeyProblem("an agent key needs --agent")
    created: list[str] = []
    known = conn.execute("SELECT 1 FROM companies WHERE slug = %s", (company,)).fetchone()
    if known is None:
        created.append(f"company {company!r}")
    company_id = ensure_company(conn, company)
    agent_id = None
    if agent:
        row = conn.execute(
            """SELECT id FROM agents WHERE company_id = %s
                 AND (external_id = %s OR name = %s OR id::text = %s)
               ORDER BY (external_id = %s) DESC, id LIMIT 1""",
            (company_id, agent, agent, agent, agent),
        ).fetchone()
        if row is None:
            row = conn.execute(
                """INSERT INTO agents (company_id, source, external_id, name)
                   VALUES (%s, 'tally', %s, %s) RETURNING id""",
                (company_id, agent, agent),
            ).fetchone()
            created.append(f"agent {agent!r}")
        assert row is not None
        agent_id = row[0]
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = f"tly_{prefix}_{secret}"
    row = conn.execute(
        """INSERT INTO api_keys (company_id, agent_id, role, name, prefix, key_hash)
           VALUES (%s, %s, %s, %s, %s, %s) RETURNING id""",
        (company_id, agent_id, role, name, prefix, digest(key)),
    ).fetchone()
    assert row is not None
    return NewKey(int(row[0]), key, tuple(created))


def list_keys(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    rows = conn.execute(
        """SELECT k.id, c.slug AS company, a.name AS agent, k.role, k.name, k.prefix,
                  k.created_at, k.last_used_at, k.revoked_at
           FROM api_keys k JOIN companies c ON c.id = k.company_id
           LEFT JOIN agents a ON a.id = k.agent_id ORDER BY k.id"""
    )
    columns = [d.name for d in rows.description or []]
    return [dict(zip(columns, row, strict=True)) for row in rows.fetchall()]


def revoke_key(conn: psycopg.Connection[Any], key_id: int) -> datetime:
    row = conn.execute(
        """UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = %s
           RETURNING revoked_at""",
        (key_id,),
    ).fetchone()
    if row is None:
        raise KeyProblem(f"no API key with id {key_id}")
    return row[0]


def authenticate(conn: psycopg.Connection[Any], presented: str) -> Principal | None:
    """The principal of a live key, or None (unknown, malformed or revoked alike)."""
    match = KEY_PATTERN.match(presented)
    if match is None:
        return None
    row = conn.execute(
        """SELECT id, company_id, agent_id, role, key_hash,
                  last_used_at IS NULL OR last_used_at < now() - interval '1 minute'
           FROM api_keys WHERE prefix = %s AND revoked_at IS NULL""",
        (match["prefix"],),
    ).fetchone()
    if row is None or not hmac.compare_digest(row[4], digest(presented)):
        return None
    if row[5]:  # at most one write a minute per key, so busy keys do not write every request
        conn.execute("UPDATE api_keys SET last_used_at = now() WHERE id = %s", (row[0],))
    return Principal(key_id=row[0], company_id=row[1], agent_id=row[2], role=row[3])
