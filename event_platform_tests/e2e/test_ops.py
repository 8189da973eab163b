"""Shipped operations files are valid and match the API: Prometheus rules and scrape config
(promtool, and a real Prometheus scraping the real API with its bearer key), Grafana dashboard."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

from benchmarks.servers import free_port, process_group, wait_until
from event_platform.settings import ApiSettings
from event_platform.store.publication import publish_snapshot
from event_platform_tests.unit.test_api import (
    EVENTS_PER_FILE,
    KEYS,
    METRICS_KEY,
    PLAIN_KEY,
    SERVED,
    build_warehouse,
    running_server,
)

OPS = Path(__file__).resolve().parents[2] / "ops"
SCRAPE_JOB = "event_platform_api"


def _promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package `prometheus`; .ci/run installs it)")
    return promtool


def test_alert_rules_pass_promtool() -> None:
    result = subprocess.run(
        [_promtool(), "check", "rules", str(OPS / "prometheus" / "alerts.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _config_for(folder: Path, jobs: dict[str, str], target: str) -> Path:
    """The shipped config, with its scrape job copied once per (job name -> key) for `target`,
    keys in files under `folder`, and a 1 s scrape interval."""
    config = yaml.safe_load((OPS / "prometheus" / "prometheus.yml").read_text())
    (shipped,) = config["scrape_configs"]
    assert shipped["job_name"] == SCRAPE_JOB
    assert shipped["authorization"]["type"] == "Bearer"
    assert set(shipped["authorization"]) == {"type", "credentials_file"}  # no key in the repo
    config["global"]["scrape_interval"] = "1s"
    config["scrape_configs"] = []
    for name, key in jobs.items():
        secret = folder / f"{name}.key"
        secret.write_text(key + "\n")
        job = json.loads(json.dumps(shipped))
        job["job_name"] = name
        job["authorization"]["credentials_file"] = str(secret)
        job["static_configs"] = [{"targets": [target]}]
        config["scrape_configs"].append(job)
    shutil.copy(OPS / "prometheus" / "alerts.yml", folder / "alerts.yml")
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_scrape_config_passes_promtool(tmp_path: Path) -> None:
    config = _config_for(tmp_path, {SCRAPE_JOB: METRICS_KEY}, "127.0.0.1:8080")
    result = subprocess.run(
        [_promtool(), "check", "config", str(config)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_prometheus_scrapes_the_api_with_its_bearer_key(tmp_path: Path) -> None:
    """A real Prometheus with the shipped scrape job: the metrics key is let in, a data key is
    refused (403), and the scraped figures are the store's."""
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.skip("prometheus not installed (Debian package `prometheus`)")
    warehouse = tmp_path / "warehouse.duckdb"
    build_warehouse(warehouse)
    publish_snapshot(warehouse, tmp_path / "published")
    settings = ApiSettings(snapshot_path=tmp_path / "published" / "current.duckdb", api_keys=KEYS)
    with running_server(settings) as api:
        target = api.removeprefix("http://")
        config = _config_for(tmp_path, {SCRAPE_JOB: METRICS_KEY, "data_key": PLAIN_KEY}, target)
        port = free_port()
        args = [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        with process_group(args, env={}, cwd=tmp_path, log=tmp_path / "prometheus.log"):
            url = f"http://127.0.0.1:{port}"

            def scraped() -> dict[str, dict] | None:
                targets = _get_json(url + "/api/v1/targets")["data"]["activeTargets"]
                health = {t["labels"]["job"]: t for t in targets}
                if len(health) == 2 and all(t["health"] != "unknown" for t in health.values()):
                    return health
                return None

            health = wait_until(scraped, timeout=60, interval=0.5, what="two scrapes")
            query = _get_json(url + "/api/v1/query?query=event_platform_events_stored")
    assert health[SCRAPE_JOB]["health"] == "up", health[SCRAPE_JOB]
    assert health["data_key"]["health"] == "down"
    assert "403" in health["data_key"]["lastError"]
    (sample,) = [r for r in query["data"]["result"] if r["metric"]["job"] == SCRAPE_JOB]
    assert float(sample["value"][1]) == sum(EVENTS_PER_FILE[name] for name in SERVED)


def test_dashboard_queries_only_our_metrics() -> None:
    dashboard = json.loads((OPS / "grafana" / "event_platform.json").read_text())
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    assert expressions
    assert all("event_platform_" in expression for expression in expressions)
