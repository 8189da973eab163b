"""One dynamic partition per landed file; the key is the file name."""

import dagster as dg

event_files = dg.DynamicPartitionsDefinition(name="event_files")
