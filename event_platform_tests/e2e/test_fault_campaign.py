"""The fault campaign (benchmarks/fault_campaign.py) runs in CI at its quick size: every kill
point recovers, every bad input ends in a clear exit with every line accounted for."""

from __future__ import annotations

import pytest

from event_platform_tests.conftest import run_benchmark


@pytest.mark.slow
def test_the_quick_fault_campaign_passes() -> None:
    completed = run_benchmark("fault_campaign", "--quick")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "Traceback" not in completed.stdout + completed.stderr
    assert "kills 6, recovered 6; failed: none" in completed.stdout
