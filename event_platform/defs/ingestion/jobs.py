"""The job that materialises one file's lineage, checks included.

It runs in-process: the steps are short and share one file, and the multiprocess executor
would add seconds per step.
"""

import dagster as dg

from event_platform.defs.ingestion.assets import LINEAGE
from event_platform.defs.ingestion.partitions import event_files

ingest_job = dg.define_asset_job(
    "ingest_event_file",
    selection=dg.AssetSelection.assets(*LINEAGE),
    partitions_def=event_files,
    executor_def=dg.in_process_executor,
)
