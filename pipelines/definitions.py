"""The Dagster code location: assets from `assets/`, automation from `pipelines/defs/`, and
the resources they need."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

import assets
from pipelines.dagster_patches import patch_pool_wait
from pipelines.resources import build_resources

patch_pool_wait()  # every run the daemon or the UI launches loads this module


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(
            assets=dg.load_assets_from_package_module(assets),
            asset_checks=dg.load_asset_checks_from_package_module(assets),
            resources=build_resources(),
            executor=dg.in_process_executor,
        ),
    )
