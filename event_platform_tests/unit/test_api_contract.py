"""Property-based fuzzing of the OpenAPI contract with schemathesis: no input yields a 5xx.

Runs against the real app (ASGI, in-process) over a real published snapshot, once with a pii key
and once without any key (which must answer 401, never 500). Bounded by `max_examples`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from event_platform.api import create_app
from event_platform.settings import ApiSettings
from event_platform.store.publication import publish_snapshot
from event_platform_tests.unit.test_api import KEYS, PII_KEY, PLAIN_KEY, build_warehouse

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _app():
    root = Path(__import__("tempfile").mkdtemp(prefix="api-contract-"))
    build_warehouse(root / "warehouse.duckdb")
    publish_snapshot(root / "warehouse.duckdb", root / "published")
    return create_app(
        ApiSettings(snapshot_path=root / "published" / "current.duckdb", api_keys=KEYS),
        dagster_instance=lambda: None,  # never the developer's DAGSTER_HOME (`make test`)
    )


APP = _app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
# Negative cases too (wrong types, out-of-range limits, NUL bytes): they must be 4xx, never 5xx.
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    allow_x00=True,
)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.parametrize("key", [PII_KEY, PLAIN_KEY, None])
def test_no_input_causes_a_server_error(case, key):
    headers = {"X-API-Key": key} if key else {}
    response = case.call(headers=headers)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text)
    content_type = response.headers["content-type"]
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.startswith(("application/json", "text/plain"))
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error", "detail"}
