"""Offline checks of the deployable form: Dockerfile, compose.yaml, deploy/k8s, deploy/helm and
deploy/terraform, each held to its schema and to what the other parts expect of it.

Kubernetes objects are validated with kubernetes-validate's bundled schemas; the Helm values'
Kubernetes fragments (pod and container security, resources, volumes) are validated the same way
inside a Deployment built from them, since the chart's own values schema needs the chart, which
is not available offline. A run pod is built as dagster-k8s builds it from the rendered values,
with and without the Iceberg overlay (values-iceberg.yaml), and validated too. checkov scans the
Dockerfile, the manifests and the Terraform (once more with iceberg_enabled).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
HELM_VALUES = ROOT / "deploy" / "helm" / "values.yaml"
HELM_ICEBERG = ROOT / "deploy" / "helm" / "values-iceberg.yaml"
K8S_ICEBERG = ROOT / "deploy" / "k8s-iceberg"
TERRAFORM = ROOT / "deploy" / "terraform"
COMPOSE = ROOT / "compose.yaml"
COMPOSE_INSTANCE = ROOT / "deploy" / "compose" / "dagster.yaml"
KUBERNETES_VERSION = "1.33.0"
# name: (checkov framework, arguments); "terraform-iceberg" scans the resources that only exist
# with iceberg_enabled (at the default they have count 0, and checkov skips them).
CHECKOV_TARGETS = {
    "dockerfile": ("dockerfile", ["-f", str(ROOT / "Dockerfile")]),
    "kubernetes": ("kubernetes", ["-d", str(K8S)]),
    "terraform": ("terraform", ["-d", str(TERRAFORM)]),
    "terraform-iceberg": ("terraform", ["-d", str(TERRAFORM), "--var-file", "{iceberg_vars}"]),
}


def _missing(reason: str) -> None:
    """Skip for a missing tool, or fail where CI promised it
    (EVENT_PLATFORM_REQUIRE_DEPLOY_TOOLS=1)."""
    if os.environ.get("EVENT_PLATFORM_REQUIRE_DEPLOY_TOOLS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def _documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _manifests() -> list[tuple[str, dict]]:
    return [
        (f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc)
        for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in _documents(path)
    ]


def _validate(resource: dict) -> None:
    try:
        import kubernetes_validate
    except ImportError:
        _missing("kubernetes-validate is not installed: pip install -e '.[deploy-check]'")
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


# --- Kubernetes manifests -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "resource"), _manifests(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_each_manifest_is_valid_kubernetes(name: str, resource: dict) -> None:
    _validate(resource)


def test_the_kustomization_lists_every_manifest() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def _workloads() -> list[dict]:
    return [doc for _, doc in _manifests() if doc["kind"] == "Deployment"]


def test_every_workload_runs_unprivileged_with_resources_and_the_shared_volume() -> None:
    claims = {
        doc["metadata"]["name"] for _, doc in _manifests() if doc["kind"] == "PersistentVolumeClaim"
    }
    for deployment in _workloads():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
            assert {"requests", "limits"} <= set(container["resources"])
        used = {
            v["persistentVolumeClaim"]["claimName"]
            for v in pod["volumes"]
            if "persistentVolumeClaim" in v
        }
        assert used == claims == {"event-platform-data"}


def test_the_api_is_probed_autoscaled_and_protected_from_disruption() -> None:
    by_kind = {(doc["kind"], doc["metadata"]["name"]): doc for _, doc in _manifests()}
    api = by_kind[("Deployment", "event-platform-api")]["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert api["livenessProbe"]["httpGet"]["path"] == "/health"
    hpa = by_kind[("HorizontalPodAutoscaler", "event-platform-api")]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "event-platform-api"
    assert hpa["spec"]["minReplicas"] >= 2
    pdb = by_kind[("PodDisruptionBudget", "event-platform-api")]
    labels = by_kind[("Deployment", "event-platform-api")]["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["selector"]["matchLabels"] == labels
    # The API cannot bind off loopback without keys: the Deployment must pass them in.
    env = {e["name"]: e for e in api["env"]}
    assert "secretKeyRef" in env["EVENT_PLATFORM_API_KEYS"]["valueFrom"]


def test_the_scrape_job_is_the_one_the_alert_rules_watch() -> None:
    config = yaml.safe_load((K8S / "prometheus-scrape.yaml").read_text())["data"][
        "scrape-config.yaml"
    ]
    jobs = [job["job_name"] for job in yaml.safe_load(config)]
    alerts = (ROOT / "ops" / "prometheus" / "alerts.yml").read_text()
    assert jobs == ["event_platform_api"]
    assert 'up{job="event_platform_api"}' in alerts


# --- Helm values for Dagster's chart ----------------------------------------------------------


def _merge_values(onto: dict, overlay: dict) -> dict:
    """Helm's merge of `-f a -f b`: maps key by key, anything else (lists too) replaced."""
    merged = dict(onto)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge_values(merged[key], value)
        else:
            merged[key] = value
    return merged


HELM_SETUPS = {"duckdb": [HELM_VALUES], "iceberg": [HELM_VALUES, HELM_ICEBERG]}


def _helm(setup: str = "duckdb") -> dict:
    values: dict = {}
    for path in HELM_SETUPS[setup]:
        values = _merge_values(values, yaml.safe_load(path.read_text()))
    return values


def _deployment_from(name: str, image: dict, pod: dict, container: dict) -> dict:
    """A Deployment holding one role's Kubernetes fragments from the values, to validate them."""
    container = {"name": name, "image": f"{image['repository']}:{image['tag']}", **container}
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {**pod, "containers": [container]},
            },
        },
    }


@pytest.mark.parametrize("setup", sorted(HELM_SETUPS))
def test_helm_values_fragments_are_valid_kubernetes(setup: str) -> None:
    values = _helm(setup)
    for role in ("dagsterWebserver", "dagsterDaemon"):
        block = values[role]
        _validate(
            _deployment_from(
                role.lower(),
                block["image"],
                {"securityContext": block["podSecurityContext"]},
                {"securityContext": block["securityContext"], "resources": block["resources"]},
            )
        )
    (user_code,) = values["dagster-user-deployments"]["deployments"]
    _validate(
        _deployment_from(
            user_code["name"],
            user_code["image"],
            {"securityContext": user_code["podSecurityContext"], "volumes": user_code["volumes"]},
            {
                "securityContext": user_code["securityContext"],
                "resources": user_code["resources"],
                "volumeMounts": user_code["volumeMounts"],
            },
        )
    )
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    run_config = launcher["runK8sConfig"]
    _validate(
        _deployment_from(
            "run",
            user_code["image"],
            {**run_config["podSpecConfig"], "volumes": launcher["volumes"]},
            {
                **run_config["containerConfig"],
                "resources": launcher["resources"],
                "volumeMounts": launcher["volumeMounts"],
            },
        )
    )


def test_helm_values_run_our_image_with_the_platforms_instance_settings() -> None:
    values = _helm()
    (user_code,) = values["dagster-user-deployments"]["deployments"]
    images = {values[r]["image"]["repository"] for r in ("dagsterWebserver", "dagsterDaemon")}
    assert images == {user_code["image"]["repository"]}  # one image for every role
    assert user_code["codeServerArgs"][:2] == ["-m", "event_platform.definitions"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    monitoring = values["dagsterDaemon"]["runMonitoring"]
    assert monitoring["enabled"] is True and monitoring["freeSlotsAfterRunEndSeconds"] > 0
    assert values["concurrency"]["pools"] == {"granularity": "op", "defaultLimit": 1}
    postgres = values["postgresql"]
    assert postgres["enabled"] is False and values["generatePostgresqlPasswordSecret"] is False
    assert postgres["postgresqlScheme"] == "postgresql+psycopg2"
    assert "postgresqlPassword" not in postgres  # from the Secret, never in the values
    # The chart's pods mount the claim and read the ConfigMap and Secret deploy/k8s defines.
    claim = user_code["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert claim == "event-platform-data"
    settings = {doc["metadata"]["name"] for _, doc in _manifests() if doc["kind"] == "ConfigMap"}
    assert {c["name"] for c in user_code["envConfigMaps"]} <= settings


# --- The Iceberg backend on Kubernetes (values-iceberg.yaml, deploy/k8s-iceberg) ---------------


def _run_job(values: dict) -> dict:
    """The Job the K8sRunLauncher creates for a run, as dagster-k8s builds it from what the chart
    renders: the launcher's config, with the code location's container context laid over it
    when `includeConfigInLaunchedRuns` is on (the chart's default)."""
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import (
        DagsterK8sJobConfig,
        UserDefinedDagsterK8sConfig,
        construct_dagster_k8s_job,
    )
    from kubernetes.client import ApiClient

    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    run_config = launcher.get("runK8sConfig", {})
    context = K8sContainerContext().merge(
        K8sContainerContext(
            image_pull_policy=launcher.get("imagePullPolicy"),
            env_config_maps=[c["name"] for c in launcher.get("envConfigMaps", [])],
            env_secrets=[s["name"] for s in launcher.get("envSecrets", [])],
            env_vars=launcher.get("envVars", []),
            volume_mounts=launcher.get("volumeMounts", []),
            volumes=launcher.get("volumes", []),
            resources=launcher.get("resources"),
            run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(
                {
                    "container_config": run_config.get("containerConfig", {}),
                    "pod_spec_config": run_config.get("podSpecConfig", {}),
                }
            ),
        )
    )
    (user_code,) = values["dagster-user-deployments"]["deployments"]
    if user_code.get("includeConfigInLaunchedRuns", {"enabled": True})["enabled"]:
        code_location = {
            "image_pull_policy": user_code["image"]["pullPolicy"],
            "env_config_maps": [c["name"] for c in user_code.get("envConfigMaps", [])],
            "env_secrets": [s["name"] for s in user_code.get("envSecrets", [])],
            "volume_mounts": user_code.get("volumeMounts", []),
            "volumes": user_code.get("volumes", []),
            "resources": user_code.get("resources", {}),
            "env": user_code.get("env", []),
        }
        context = context.merge(K8sContainerContext.create_from_config({"k8s": code_location}))
    job = construct_dagster_k8s_job(
        DagsterK8sJobConfig(
            job_image=f"{user_code['image']['repository']}:{user_code['image']['tag']}",
            dagster_home="/opt/dagster/dagster_home",
            instance_config_map="dagster-instance",
            postgres_password_secret="dagster-postgresql-secret",
        ),
        args=["dagster", "api", "execute_run", "{}"],
        job_name="dagster-run-0",
        user_defined_k8s_config=context.run_k8s_config,
        pod_name="dagster-run-0",
        component="run_worker",
    )
    return ApiClient().sanitize_for_serialization(job)


def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


@pytest.mark.parametrize("setup", sorted(HELM_SETUPS))
def test_a_run_pod_is_valid_kubernetes_with_the_launchers_resources(setup: str) -> None:
    values = _helm(setup)
    job = _run_job(values)
    _validate(job)
    pod = job["spec"]["template"]["spec"]
    (run,) = pod["containers"]
    # A run gets the memory the launcher asks for, not the code location's.
    assert run["resources"] == values["runLauncher"]["config"]["k8sRunLauncher"]["resources"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert run["securityContext"]["allowPrivilegeEscalation"] is False
    assert run["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_iceberg_runs_take_the_backend_and_the_catalog_from_a_secret() -> None:
    job = _run_job(_helm("iceberg"))
    (run,) = job["spec"]["template"]["spec"]["containers"]
    env = _env(run)
    assert env["EVENT_PLATFORM_WAREHOUSE"]["value"] == "iceberg"
    assert env["EVENT_PLATFORM_ICEBERG_LOCATION"]["value"].startswith("gs://")
    # The catalog URI (and PGPASSWORD) come only from the Secret, never as a literal.
    assert "EVENT_PLATFORM_ICEBERG_CATALOG_URI" not in env and "PGPASSWORD" not in env
    assert {"secretRef": {"name": "event-platform-iceberg"}} in run["envFrom"]
    text = HELM_ICEBERG.read_text()
    assert not re.search(
        r"postgresql(\+psycopg2)?://[^@\s/']+:[^@\s/']+@", text
    )  # no user:password@
    # The duckdb_writer pool admits as many writers as runs can run at once.
    values = _helm("iceberg")
    limit = values["concurrency"]["pools"]["defaultLimit"]
    queue = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert 1 < limit <= queue["maxConcurrentRuns"]


def test_iceberg_runs_reach_cloud_sql_through_the_auth_proxy_as_a_native_sidecar() -> None:
    pod = _run_job(_helm("iceberg"))["spec"]["template"]["spec"]
    (proxy,) = pod["initContainers"]
    assert proxy["image"].startswith("gcr.io/cloud-sql-connectors/cloud-sql-proxy:")
    assert proxy["restartPolicy"] == "Always"  # a sidecar that ends with the run's container
    assert "--private-ip" in proxy["args"] and "--port=5432" in proxy["args"]
    (instance,) = [a for a in proxy["args"] if not a.startswith("--")]
    assert re.fullmatch(r"[a-z0-9-]+:[a-z0-9-]+:[a-z0-9-]+", instance)  # project:region:name
    assert proxy["startupProbe"]["httpGet"]["path"] == "/startup"  # up before the run starts
    security = proxy["securityContext"]
    assert security["runAsNonRoot"] is True and security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {"requests", "limits"} <= set(proxy["resources"])


def test_the_iceberg_overlay_restates_the_base_lists_it_replaces() -> None:
    """Helm replaces lists: the overlay's user deployment and Secrets must be the base's plus
    the Iceberg additions, or an edit of values.yaml would silently not apply with Iceberg."""
    base, iceberg = _helm("duckdb"), _helm("iceberg")
    (base_code,) = base["dagster-user-deployments"]["deployments"]
    (iceberg_code,) = iceberg["dagster-user-deployments"]["deployments"]
    added = {"env", "envSecrets"}
    assert {k: v for k, v in iceberg_code.items() if k not in added} == {
        k: v for k, v in base_code.items() if k not in added
    }
    iceberg_secret = {"name": "event-platform-iceberg"}
    assert iceberg_code["envSecrets"] == [*base_code["envSecrets"], iceberg_secret]
    assert _env(iceberg_code)["EVENT_PLATFORM_WAREHOUSE"]["value"] == "iceberg"
    launchers = [v["runLauncher"]["config"]["k8sRunLauncher"] for v in (base, iceberg)]
    assert launchers[1]["envSecrets"] == [*launchers[0]["envSecrets"], iceberg_secret]
    assert (
        launchers[1]["runK8sConfig"]["podSpecConfig"]["securityContext"]
        == (launchers[0]["runK8sConfig"]["podSpecConfig"]["securityContext"])
    )


def _kustomize(path: Path) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        _missing("kubectl is not installed (kubectl kustomize renders deploy/k8s-iceberg)")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def test_the_iceberg_kustomization_is_deploy_k8s_plus_egress_to_cloud_sql() -> None:
    base = {(d["kind"], d["metadata"]["name"]): d for d in _kustomize(K8S)}
    iceberg = {(d["kind"], d["metadata"]["name"]): d for d in _kustomize(K8S_ICEBERG)}
    assert set(iceberg) == set(base)
    changed = {key for key in base if base[key] != iceberg[key]}
    assert changed == {("NetworkPolicy", "dagster")}
    for resource in iceberg.values():
        _validate(resource)
    egress = iceberg[("NetworkPolicy", "dagster")]["spec"]["egress"]
    ports = {p["port"] for rule in egress if "to" not in rule for p in rule["ports"]}
    assert 3307 in ports  # the Auth Proxy's connection to the instance
    assert (
        egress[: len(base[("NetworkPolicy", "dagster")]["spec"]["egress"])]
        == (base[("NetworkPolicy", "dagster")]["spec"]["egress"])
    )


# --- compose.yaml and its instance profile ----------------------------------------------------


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_publishes_ports_on_loopback_only() -> None:
    for name, service in _compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_compose_secrets_come_from_the_env_file_without_defaults() -> None:
    text = COMPOSE.read_text()
    example = (ROOT / ".env.example").read_text()
    for secret in ("DAGSTER_PG_PASSWORD", "EVENT_PLATFORM_API_KEYS", "GRAFANA_ADMIN_PASSWORD"):
        uses = re.findall(r"\$\{" + secret + r"([^}]*)\}", text)
        assert uses, secret
        assert all(use.startswith(":?") for use in uses), (secret, uses)  # required, no default
        assert re.search(rf"^{secret}=set-me", example, re.MULTILINE), secret
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False
    ).returncode
    assert ignored == 0, ".env must be git-ignored"


def test_compose_runs_every_role_from_one_image_with_health_checks() -> None:
    services = _compose()["services"]
    ours = {"code-location", "webserver", "daemon", "api", "pubsub-setup", "consumer"}
    images = {services[name]["image"] for name in ours}
    assert images == {"${EVENT_PLATFORM_IMAGE:-event-platform:latest}"}
    # Each builds the image rather than pulling a name no registry has.
    assert {services[name]["build"]["context"] for name in ours} == {"."}
    for role in ("postgres", "code-location", "webserver", "daemon", "api"):
        assert services[role]["healthcheck"]["test"], role
    assert services["consumer"]["profiles"] == services["pubsub-emulator"]["profiles"] == ["pubsub"]


def test_the_run_launcher_uses_the_stacks_network_volumes_and_settings() -> None:
    compose = _compose()
    instance = yaml.safe_load(COMPOSE_INSTANCE.read_text())
    launcher = instance["run_launcher"]
    assert launcher["class"] == "DockerRunLauncher"
    assert launcher["config"]["network"] == compose["networks"]["default"]["name"]
    names = {volume["name"] for volume in compose["volumes"].values() if volume}
    mounted = {spec.split(":")[0] for spec in launcher["config"]["container_kwargs"]["volumes"]}
    assert mounted <= names
    # Every variable the launcher passes on is set in the daemon's environment (or the
    # launch fails with "Tried to load environment variable ... but it was not set").
    daemon_env = compose["services"]["daemon"]["environment"]
    assert set(launcher["config"]["env_vars"]) <= set(daemon_env)
    workspace = yaml.safe_load((ROOT / "deploy" / "compose" / "workspace.yaml").read_text())
    server = workspace["load_from"][0]["grpc_server"]
    assert server["host"] in compose["services"]
    assert str(server["port"]) in compose["services"]["code-location"]["command"]


def test_the_compose_instance_profile_is_valid_dagster_config(tmp_path: Path) -> None:
    from dagster._core.instance.config import dagster_instance_config
    from dagster_docker import DockerRunLauncher

    shutil.copy(COMPOSE_INSTANCE, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0
    assert config["run_monitoring"]["enabled"] is True
    assert config["concurrency"]["pools"]["default_limit"] == 1
    from dagster._config import process_config

    launcher_config = process_config(
        DockerRunLauncher.config_type(), config["run_launcher"]["config"]
    )
    assert launcher_config.success, launcher_config.errors


def test_prometheus_and_grafana_are_provisioned_from_ops() -> None:
    services = _compose()["services"]
    prometheus = yaml.safe_load((ROOT / "deploy/compose/prometheus/prometheus.yml").read_text())
    (job,) = prometheus["scrape_configs"]
    assert job["job_name"] == "event_platform_api"
    assert job["static_configs"][0]["targets"] == ["api:8080"]
    assert any(
        "ops/prometheus/alerts.yml:/etc/prometheus/rules/" in v
        for v in services["prometheus"]["volumes"]
    )
    provider = yaml.safe_load(
        (ROOT / "deploy/compose/grafana/provisioning/dashboards/event_platform.yaml").read_text()
    )
    path = provider["providers"][0]["options"]["path"]
    assert (
        f"./ops/grafana/event_platform.json:{path}/event_platform.json:ro"
        in services["grafana"]["volumes"]
    )
    datasource = yaml.safe_load(
        (ROOT / "deploy/compose/grafana/provisioning/datasources/prometheus.yaml").read_text()
    )["datasources"][0]
    assert datasource["type"] == "prometheus" and datasource["isDefault"] is True
    dashboard = json.loads((ROOT / "ops/grafana/event_platform.json").read_text())
    assert dashboard["templating"]["list"][0]["query"] == "prometheus"


# --- Dockerfile -----------------------------------------------------------------------------


def test_the_dockerfile_builds_an_unprivileged_image_without_build_tools_or_secrets() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim-bookworm$", text, re.MULTILINE)
    stages = re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]
    final = stages[-1]
    assert final.startswith("${BASE_IMAGE} AS runtime")
    user = re.findall(r"^USER (\S+)", final, re.MULTILINE)
    assert user and not user[-1].startswith(("root", "0"))
    assert not re.search(r"gcc|build-essential|\[test\]|pip install", final)
    assert "--mount=type=secret,id=ca" in text  # the CA only as a build secret
    assert not re.search(r"^(ENV|ARG) .*(PASSWORD|SECRET|API_KEYS)", text, re.MULTILINE)
    ignore = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert ignore[0] == "*"  # everything is excluded unless listed


# --- checkov and Terraform --------------------------------------------------------------------


def _checkov() -> str:
    for candidate in (ROOT / ".venv-checkov" / "bin" / "checkov", shutil.which("checkov")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    _missing("checkov is not installed (.ci/run puts it in .venv-checkov: it pins old packaging)")


# A skip names its check and says why: `#checkov:skip=ID:reason` in the Dockerfile and in
# Terraform, a `checkov.io/skipN: "ID=reason"` annotation in Kubernetes manifests.
SKIP_DECLARATION = re.compile(r'checkov(?::skip=|\.io/skip\d+: "?)(CKV2?_[A-Z0-9_]+)[:=]([^"\n]*)')


def _skip_reasons() -> dict[str, list[str]]:
    reasons: dict[str, list[str]] = {}
    files = [ROOT / "Dockerfile", *K8S.glob("*.yaml"), *TERRAFORM.glob("*.tf")]
    for path in files:
        for check_id, reason in SKIP_DECLARATION.findall(path.read_text()):
            reasons.setdefault(check_id, []).append(reason.strip())
    return reasons


@pytest.mark.parametrize("target", sorted(CHECKOV_TARGETS))
def test_checkov_finds_nothing_unjustified(target: str, tmp_path: Path) -> None:
    framework, arguments = CHECKOV_TARGETS[target]
    iceberg_vars = tmp_path / "iceberg.tfvars"
    iceberg_vars.write_text("iceberg_enabled = true\n")
    arguments = [a.format(iceberg_vars=iceberg_vars) for a in arguments]
    completed = subprocess.run(
        [_checkov(), "--skip-download", "--output", "json", "--framework", framework, *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(completed.stdout)
    results, summary = report["results"], report["summary"]
    failed = [(c["check_id"], c["resource"], c["file_path"]) for c in results["failed_checks"]]
    assert failed == []
    assert summary["parsing_errors"] == 0 and summary["passed"] > 0
    if target == "terraform-iceberg":  # the Iceberg resources were scanned, not skipped
        scanned = {c["resource"] for c in results["passed_checks"]}
        assert {
            "google_sql_database_instance.iceberg[0]",
            "google_storage_bucket.iceberg[0]",
        } <= scanned
    reasons = _skip_reasons()
    for skipped in results["skipped_checks"]:
        declared = reasons.get(skipped["check_id"], [])
        assert declared and all(len(r) > 20 for r in declared), (
            f"{skipped['check_id']} is skipped without a reason"
        )


def _terraform() -> str:
    terraform = shutil.which("terraform")
    if terraform is None:
        _missing("terraform is not installed")
    return terraform


def test_terraform_is_formatted() -> None:
    completed = subprocess.run(
        [_terraform(), "fmt", "-check", "-diff", "-recursive", str(TERRAFORM)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout


def test_terraform_validates(tmp_path: Path) -> None:
    """`terraform validate` needs the google provider; offline, init cannot fetch it."""
    work = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, work, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    init = subprocess.run(
        [_terraform(), "init", "-backend=false", "-input=false", "-no-color"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    if init.returncode != 0:
        if "hashicorp/google" in init.stdout + init.stderr:
            pytest.skip(
                "the hashicorp/google provider is not available here (no Terraform registry): "
                "validated by fmt and checkov instead"
            )
        pytest.fail(f"terraform init failed: {init.stderr[-2000:]}")
    validate = subprocess.run(
        [_terraform(), "validate", "-no-color"],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr


def test_terraform_configures_remote_state_without_committing_its_bucket() -> None:
    versions = (TERRAFORM / "versions.tf").read_text()
    assert re.search(r'backend "gcs" \{\}', versions)  # bucket passed at init
    committed = subprocess.run(
        ["git", "ls-files", "deploy/terraform"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert not [f for f in committed if f.endswith((".tfstate", ".tfvars")) or "/.terraform/" in f]


def test_terraform_dead_letters_with_the_iam_pubsub_needs() -> None:
    pubsub = (TERRAFORM / "pubsub.tf").read_text()
    assert "dead_letter_policy" in pubsub and "retry_policy" in pubsub
    # Pub/Sub's service agent publishes dead letters and acks the source subscription.
    assert re.search(
        r'dead_letter_publisher".*?roles/pubsub\.publisher.*?pubsub_service_agent', pubsub, re.S
    )
    assert re.search(
        r'dead_letter_subscriber".*?roles/pubsub\.subscriber.*?pubsub_service_agent', pubsub, re.S
    )


def _tf_block(text: str, header: str) -> str:
    """The body of the Terraform block that starts with `header` (braces matched)."""
    start = text.index(header)
    depth, i = 0, text.index("{", start)
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    raise AssertionError(f"unclosed block {header}")


def test_terraform_iceberg_is_optional_and_off_by_default() -> None:
    variables = (TERRAFORM / "variables.tf").read_text()
    assert re.search(r"default\s*=\s*false", _tf_block(variables, 'variable "iceberg_enabled"'))
    iceberg = (TERRAFORM / "iceberg.tf").read_text()
    headers = re.findall(r'^(?:resource|ephemeral) "[^"]+" "[^"]+"', iceberg, re.MULTILINE)
    assert len(headers) >= 8
    for header in headers:
        assert re.search(r"^\s*count\s*=\s*local\.iceberg$", _tf_block(iceberg, header), re.M), (
            header
        )


def test_terraform_cloud_sql_catalog_is_private_backed_up_and_protected() -> None:
    iceberg = (TERRAFORM / "iceberg.tf").read_text()
    instance = _tf_block(iceberg, 'resource "google_sql_database_instance" "iceberg"')
    network = _tf_block(instance, "ip_configuration")
    assert re.search(r"ipv4_enabled\s*=\s*false", network)  # private IP only
    assert re.search(r"private_network\s*=\s*google_compute_network\.main\.id", network)
    backups = _tf_block(instance, "backup_configuration")
    assert re.search(r"^\s*enabled\s*=\s*true", backups, re.M)
    assert re.search(r"point_in_time_recovery_enabled\s*=\s*true", backups)
    assert re.search(r"^\s*deletion_protection\s*=\s*true", instance, re.M)
    assert re.search(r"deletion_protection_enabled\s*=\s*true", instance)
    # The password is written write-only from Secret Manager; no password literal anywhere.
    user = _tf_block(iceberg, 'resource "google_sql_user" "iceberg"')
    assert re.search(r"password_wo\s*=\s*ephemeral\.google_secret_manager_secret_version\.", user)
    assert not re.search(r"^\s*password\s*=", iceberg, re.M)


def test_terraform_iceberg_bucket_is_private_and_dagster_may_use_it() -> None:
    iceberg = (TERRAFORM / "iceberg.tf").read_text()
    bucket = _tf_block(iceberg, 'resource "google_storage_bucket" "iceberg"')
    assert re.search(r'public_access_prevention\s*=\s*"enforced"', bucket)
    assert re.search(r"uniform_bucket_level_access\s*=\s*true", bucket)
    assert re.search(r"enabled\s*=\s*true", _tf_block(bucket, "versioning"))
    writer = _tf_block(
        iceberg, 'resource "google_storage_bucket_iam_member" "dagster_writes_iceberg"'
    )
    assert "roles/storage.objectAdmin" in writer and "google_service_account.dagster" in writer
    client = _tf_block(
        iceberg, 'resource "google_project_iam_member" "dagster_connects_to_catalog"'
    )
    assert "roles/cloudsql.client" in client and "google_service_account.dagster" in client
