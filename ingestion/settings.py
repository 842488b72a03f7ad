"""The one settings object: every `TALLY_*` environment variable, with its default."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


def _claude_candidates() -> list[Path]:
    """Where Claude Code may keep its transcripts: under each root of CLAUDE_CONFIG_DIR (a
    comma-separated list, as ccusage takes it), else under ~/.claude and ~/.config/claude
    (Claude Code versions differ; ccusage reads both). The first is the one earlier versions
    of tally read: a directory reached by both paths keeps the cursors it has."""
    config_dirs = [d.strip() for d in os.environ.get("CLAUDE_CONFIG_DIR", "").split(",")]
    roots = [Path(d).expanduser() for d in config_dirs if d]
    if not roots:
        roots = [Path("~/.claude").expanduser(), Path("~/.config/claude").expanduser()]
    return [root / "projects" for root in roots]


def _default_claude_dir() -> Path:
    candidates = _claude_candidates()
    return next((c for c in candidates if c.is_dir()), candidates[0])


def _default_codex_dir() -> Path:
    codex_home = os.environ.get("CODEX_HOME")
    base = Path(codex_home).expanduser() if codex_home else Path("~/.codex").expanduser()
    return base / "sessions"


WAREHOUSE_SCHEMES = ("duckdb://",)
POSTGRES_SCHEMES = ("postgresql", "postgresql+psycopg", "postgres")


def postgres_url(url: str | None) -> str | None:
    """The URL with tally's driver (`postgres://` and `postgresql://` are the same server to
    libpq, but SQLAlchemy knows no `postgres` dialect and would pick psycopg2 for the other),
    else a ValueError saying what is expected: a wrong scheme or a malformed URL is refused
    before anything connects."""
    if url is None:
        return None
    scheme, separator, rest = url.partition("://")
    if not separator or scheme not in POSTGRES_SCHEMES:
        raise ValueError(
            f"{url!r} is not a PostgreSQL URL: use postgresql+psycopg://user@host:port/database"
        )
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(f"postgresql://{rest}")
    except ProgrammingError as error:
        raise ValueError(f"{url!r} is not a valid URL: {error}") from None
    return f"postgresql+psycopg://{rest}"


ENV_PREFIX = "TALLY_"


class TallySettings(BaseModel):
    """Configuration from the environment. With nothing set, tally runs on an embedded
    PostgreSQL under `data_dir/postgres` and a DuckDB file in `data_dir`.

    Each field is read from `TALLY_<FIELD>` (any case) and validated by pydantic; values
    given as arguments win. Every field is a scalar, so reading them needs no more than this:
    pydantic-settings, which did it before, cost every command 55-110 ms of imports (asyncio,
    dotenv, cloud secret stores) before it could parse its arguments."""

    # defaults are validated too, as pydantic-settings did (a `.data` that is a file is refused)
    model_config = ConfigDict(extra="ignore", validate_default=True)

    def __init__(self, **values: Any) -> None:
        super().__init__(**{**_from_environment(type(self).model_fields), **values})

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the canonical store (postgresql+psycopg://...). "
        "Unset: a project-local PostgreSQL under data_dir/postgres is started and used.",
    )
    warehouse_url: str | None = Field(
        default=None,
        description="Analytics warehouse: duckdb:///path/to/file.duckdb (the only backend so "
        "far). Unset: data_dir/warehouse.duckdb.",
    )
    data_dir: Path = Field(default=Path(".data"), description="Where local state lives.")
    claude_dir: Path = Field(
        default_factory=_default_claude_dir,
        description="Claude Code projects directory. Unset: every one that exists of "
        "~/.claude/projects and ~/.config/claude/projects, or of <root>/projects for each "
        "root of CLAUDE_CONFIG_DIR (comma-separated).",
    )
    codex_dir: Path = Field(
        default_factory=_default_codex_dir,
        description="Codex sessions directory (honours CODEX_HOME).",
    )
    company: str = Field(
        default="local",
        description="Company that file-ingested records belong to (created on first use).",
    )
    ingest_batch_rows: int = Field(
        default=50_000, ge=100, description="Rows per COPY + merge transaction."
    )
    ingest_workers: int | None = Field(
        default=None,
        ge=0,
        description="Processes that parse files (0: parse in the loading process). "
        "Unset: one per core, at most 4.",
    )
    ingest_parallel_min_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=0,
        description="Below this many new bytes a run parses inline: worker start-up would "
        "cost more than it saves.",
    )
    dagster_database: str = Field(
        default="dagster",
        description="Database, on the canonical store's server, for Dagster's run, event "
        "and schedule storage (`tally ui`, its daemon and `tally materialize`).",
    )
    partitions_start: str = Field(
        default="2024-01-01", description="First day of the daily partitions (UTC)."
    )
    materialize_slice_events: int = Field(
        default=1_000_000,
        ge=1,
        description="Most usage events a materialisation holds in memory at once: a longer "
        "range is priced, attributed and rolled up a slice of whole days at a time (a day "
        "with more events is a slice of its own). A backfill peaks at about 2.5 GB with the "
        "default.",
    )
    run_retention_days: int = Field(
        default=30,
        ge=1,
        description="Days the routine ingest runs (the sensor's and the hourly schedule's) "
        "are kept in the Dagster database once they succeeded; failed runs and "
        "materialisations are kept.",
    )
    subscription_sources: str = Field(
        default="",
        description="Comma-separated sources whose usage a subscription covers (billed cost "
        "0, notional cost at API prices), e.g. 'claude_code'.",
    )
    pigeon_db: Path | None = Field(
        default=None, description="Pigeon's SQLite database, read by `tally ingest pigeon`."
    )
    paperclip_url: str | None = Field(
        default=None,
        description="Paperclip's PostgreSQL (a read-only URL), read by `tally ingest paperclip`.",
    )
    attribution_touch_window_minutes: int = Field(
        default=120, ge=1, description="How long an issue touch keeps attributing a session."
    )
    attribution_commit_window_minutes: int = Field(
        default=120, ge=1, description="How far before a commit its work is attributed to it."
    )
    mcp_correlation_slack_seconds: int = Field(
        default=60,
        ge=0,
        description="How far an MCP session's activity may stick out of the agent session it "
        "is correlated with.",
    )
    max_line_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="A JSONL line longer than this is rejected without being held in memory.",
    )

    @field_validator("database_url", "paperclip_url")
    @classmethod
    def _postgres(cls, url: str | None) -> str | None:
        return postgres_url(url)

    @field_validator("warehouse_url")
    @classmethod
    def _supported_warehouse(cls, url: str | None) -> str | None:
        # checked here so that every command and the API refuse it before doing any work
        if url is not None and not url.startswith(WAREHOUSE_SCHEMES):
            raise ValueError(f"{url!r} is not a supported warehouse: use duckdb:///path/to/file")
        return url

    @field_validator("data_dir")
    @classmethod
    def _a_directory(cls, path: Path) -> Path:
        if path.expanduser().exists() and not path.expanduser().is_dir():
            raise ValueError(f"{str(path)!r} is not a directory")
        return path

    @field_validator("company")
    @classmethod
    def _named(cls, company: str) -> str:
        if not company.strip():
            raise ValueError("the company must not be blank")
        return company.strip()

    @field_validator("partitions_start")
    @classmethod
    def _iso_day(cls, day: str) -> str:
        try:
            date.fromisoformat(day)
        except ValueError:
            raise ValueError(f"{day!r} is not a date (YYYY-MM-DD)") from None
        return day

    def partition_bounds(self) -> tuple[date, date]:
        """The first and last daily partition: partitions_start to today (UTC)."""
        return date.fromisoformat(self.partitions_start), datetime.now(UTC).date()

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def claude_dirs(self) -> list[Path]:
        """Every Claude projects directory to read: TALLY_CLAUDE_DIR when it is set, else
        each candidate that exists (one directory reached by two paths counts once), else
        the default, so that messages name where transcripts were looked for."""
        if "claude_dir" in self.model_fields_set:
            return [self.claude_dir.expanduser()]
        found = {c.resolve(): c for c in _claude_candidates() if c.is_dir()}
        return list(found.values()) or [self.claude_dir.expanduser()]

    @property
    def claude_dirs_looked_in(self) -> list[Path]:
        """Every place Claude transcripts are looked for, existing or not: for messages that
        say where none were found."""
        if "claude_dir" in self.model_fields_set:
            return [self.claude_dir.expanduser()]
        return list({c.resolve(): c for c in _claude_candidates()}.values())

    @property
    def subscription_source_set(self) -> frozenset[str]:
        return frozenset(s.strip() for s in self.subscription_sources.split(",") if s.strip())

    @property
    def resolved_warehouse_url(self) -> str:
        return self.warehouse_url or f"duckdb:///{self.resolved_data_dir / 'warehouse.duckdb'}"


def _from_environment(fields: dict[str, Any]) -> dict[str, str]:
    names = {f"{ENV_PREFIX}{name}".upper(): name for name in fields}
    return {names[key.upper()]: value for key, value in os.environ.items()
            if key.upper() in names}  # fmt: skip


@lru_cache(maxsize=1)
def get_settings() -> TallySettings:
    return TallySettings()
