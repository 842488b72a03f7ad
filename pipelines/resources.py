"""The code location's resources, configured from the environment (TALLY_*)."""

from __future__ import annotations

from typing import Any

import dagster as dg

from assets.resources import CanonicalStoreResource, WarehouseResource


def _optional_env(name: str) -> Any:
    # EnvVar when set (shown as such in the UI), else None: the settings' default applies.
    import os

    return dg.EnvVar(name) if os.environ.get(name) else None


def build_resources(
    database_url: str | None = None, warehouse_url: str | None = None
) -> dict[str, Any]:
    return {
        "canonical_store": CanonicalStoreResource(
            database_url=database_url or _optional_env("TALLY_DATABASE_URL")
        ),
        "warehouse": WarehouseResource(url=warehouse_url or _optional_env("TALLY_WAREHOUSE_URL")),
    }
