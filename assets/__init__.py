"""The Dagster assets, one package per group."""

import warnings

# `backfill_policy` (a range in one run) is a deliberate use of a beta parameter of
# `dg.asset`: its notice is for whoever writes the definitions, not for every process that
# loads them (the UI's log repeated it for each run the daemon launched).
warnings.filterwarnings("ignore", message="Parameter `backfill_policy` of function `asset`")
