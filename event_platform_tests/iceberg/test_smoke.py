from pathlib import Path

from event_platform.ingest.ingestion import ingest_file
from event_platform.reconcile import reconcile_partition
from event_platform_tests.conftest import event_line, write_lines


def test_ingest_and_reconcile(tmp_path: Path, iceberg) -> None:
    a = write_lines(tmp_path / "a.jsonl", [event_line(1), "", event_line(2), event_line(1)])
    b = write_lines(tmp_path / "b.jsonl", [event_line(2), event_line(3)])
    ra = ingest_file(a, iceberg, run_id="a")
    rb = ingest_file(b, iceberg, run_id="b")
    assert (ra.stored, ra.rejected, ra.duplicates) == (2, 1, 1)
    assert (rb.stored, rb.rejected, rb.duplicates) == (1, 0, 1)
    for path in (a, b):
        with iceberg.partition(path.name) as con:
            report = reconcile_partition(path, con, run_id="check")
            iceberg.record_report(con, report)
        assert report.passed, report
