"""Resource types the assets declare. They hand out the plain store and warehouse objects
of `ingestion/`; the code location (`pipelines/resources.py`) configures them."""

from __future__ import annotations

import dagster as dg

from ingestion.settings import get_settings
from ingestion.store import CanonicalStore, database_url
from ingestion.warehouse.base import Warehouse, open_warehouse


class CanonicalStoreResource(dg.ConfigurableResource):
    """The canonical PostgreSQL store: `database_url`, else TALLY_DATABASE_URL, else the
    embedded server."""

    database_url: str | None = None

    def store(self) -> CanonicalStore:
        return CanonicalStore(self.database_url or database_url(get_settings()))


class WarehouseResource(dg.ConfigurableResource):
    """The analytics warehouse: `url`, else TALLY_WAREHOUSE_URL, else
    $TALLY_DATA_DIR/warehouse.duckdb."""

    url: str | None = None

    def open(self, lock_wait_seconds: float | None = None) -> Warehouse:
        return open_warehouse(
            self.url or get_settings().resolved_warehouse_url, lock_wait_seconds=lock_wait_seconds
        )
