#!/usr/bin/env python3
"""Lints and renders the chart with Helm's own Go SDK (helm-python-sdk), validates every
rendered core manifest against the Kubernetes schemas (kubernetes-validate) of the oldest
Kubernetes the chart supports and of the newest kubernetes-validate ships, and checks what the
service needs from it: for the default values (plus the database URL they require), for
helm/values-production.yaml, and for the variants in between (SQLite, inline config file,
existing Secrets). Also checks that the chart refuses what the service cannot run with.

Run by .ci/run as `python3 helm/check_chart.py`; offline; exit status 0 when everything holds,
1 with every problem listed otherwise. Prints one summary line."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import yaml

HELM_DIR = Path(__file__).resolve().parent
CHART = HELM_DIR / "capture-service"
PRODUCTION = HELM_DIR / "values-production.yaml"
RULES_TEMPLATE = CHART / "templates" / "prometheusrule.yaml"
DASHBOARD = CHART / "dashboards" / "capture-service.json"

# The oldest Kubernetes the chart declares (Chart.yaml kubeVersion), and the newest the
# installed kubernetes-validate has schemas for.
OLDEST_KUBE = "1.30.0"
KUBE_VERSIONS = sorted({OLDEST_KUBE, kubernetes_validate.latest_version()}, key=lambda v: [int(p) for p in v.split(".")])
# Prometheus Operator objects: no schema in kubernetes-validate; checked structurally below.
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}

RELEASE = "capture"
NAMESPACE = "payments"
FULLNAME = "capture-capture-service"
POSTGRES_URL = "postgres://capture:secret@postgres:5432/capture"
DIGESTS = "team:" + "0" * 64

# What the service exports (README "Operating it"; tests/walkthrough/metrics.rs scrapes them),
# as Prometheus sees the samples, and the label names of the gRPC families.
EXPORTED = {
    "grpc_server_started_total",
    "grpc_server_handled_total",
    "grpc_server_handling_seconds_bucket",
    "grpc_server_handling_seconds_sum",
    "grpc_server_handling_seconds_count",
    "capture_provider_calls_total",
    "capture_provider_call_seconds_bucket",
    "capture_provider_call_seconds_sum",
    "capture_provider_call_seconds_count",
    "capture_status_changes_total",
    "capture_webhooks_total",
    "capture_reconciler_due",
    "capture_reconciler_oldest_due_seconds",
    "capture_in_flight",
    "capture_shed_total",
    "capture_db_pool_connections",
    "capture_store_unavailable_total",
    "capture_build_info",
}
GRPC_LABELS = {"grpc_type", "grpc_service", "grpc_method", "grpc_code"}
METRIC_NAME = re.compile(r"\b(?:capture|grpc)_[a-z0-9_]+")

# The defaults need only a database; API keys and a providers Secret as in any real install.
DEFAULTS: dict[str, Any] = {
    "database": {"url": POSTGRES_URL},
    "apiKeys": {"digests": DIGESTS},
    "providers": {"existingSecret": "capture-providers"},
}

problems: list[str] = []
counts = {"assertions": 0, "manifests": 0, "validated": 0, "crds": 0, "value sets": 0, "refusals": 0}


def check(condition: Any, message: str) -> bool:
    counts["assertions"] += 1
    if not condition:
        problems.append(message)
    return bool(condition)


def merged(*layers: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of value layers (later wins), like several -f files."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merged(out[key], value)
            else:
                out[key] = value
    return out


class Rendered:
    """One render: its documents by kind, with helpers to find them."""

    def __init__(self, name: str, files: dict[str, str]):
        self.name = name
        self.files = files
        self.docs: list[dict[str, Any]] = []
        for path, text in files.items():
            if path.endswith("NOTES.txt"):
                continue
            for doc in yaml.safe_load_all(text):
                if isinstance(doc, dict):
                    doc.setdefault("_path", path)
                    self.docs.append(doc)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d.get("kind") == kind]

    def one(self, kind: str, hook: bool | None = None) -> dict[str, Any]:
        found = [d for d in self.all(kind) if hook is None or is_hook(d) == hook]
        if not check(len(found) == 1, f"[{self.name}] expected one {kind}{'' if hook is None else (' hook' if hook else ' (release object)')}, found {len(found)}"):
            return {}
        return found[0]

    def kinds(self) -> set[str]:
        return {d["kind"] for d in self.docs}


def annotations(doc: dict[str, Any]) -> dict[str, str]:
    return (doc.get("metadata") or {}).get("annotations") or {}


def is_hook(doc: dict[str, Any]) -> bool:
    return "helm.sh/hook" in annotations(doc)


def dig(doc: Any, *path: Any, default: Any = None) -> Any:
    for key in path:
        try:
            doc = doc[key]
        except (KeyError, IndexError, TypeError):
            return default
    return doc


def render(chart: helm.Chart, name: str, values: dict[str, Any]) -> Rendered | None:
    counts["value sets"] += 1
    try:
        files = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    except helm.HelmError as e:
        problems.append(f"[{name}] render failed: {e}")
        return None
    rendered = Rendered(name, files)
    validate(rendered)
    return rendered


def refuses(chart: helm.Chart, name: str, values: dict[str, Any], expected: str) -> None:
    """The chart must refuse these values, saying `expected`."""
    try:
        chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    except helm.HelmError as e:
        counts["refusals"] += 1
        check(expected.lower() in str(e).lower(), f"[{name}] refused, but without {expected!r}: {e}")
    else:
        check(False, f"[{name}] rendered, but the chart must refuse it ({expected})")


def lint(name: str, values: dict[str, Any]) -> None:
    report = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE, kube_version=f"v{OLDEST_KUBE}")
    findings = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    check(not report.get("errors") and not findings, f"[{name}] helm lint: {report.get('errors')} {findings}")


def validate(rendered: Rendered) -> None:
    """Every core manifest against the Kubernetes schemas; CRD kinds structurally."""
    for doc in rendered.docs:
        counts["manifests"] += 1
        body = {k: v for k, v in doc.items() if k != "_path"}
        where = f"[{rendered.name}] {doc.get('_path')}: {doc.get('kind')} {dig(doc, 'metadata', 'name')}"
        if (doc.get("apiVersion"), doc.get("kind")) in CRD_KINDS:
            counts["crds"] += 1
            check(isinstance(dig(body, "metadata", "name"), str) and isinstance(body.get("spec"), dict), f"{where}: no name or spec")
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(body, version, strict=True)
                counts["validated"] += 1
            except kubernetes_validate.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                problems.append(f"{where} invalid for Kubernetes {version}: {path}: {e.message}")
            except kubernetes_validate.SchemaNotFoundError as e:
                problems.append(f"{where}: {e.message}")


# ---------------------------------------------------------------- the server's pods


def container_of(deployment: dict[str, Any]) -> dict[str, Any]:
    return dig(deployment, "spec", "template", "spec", "containers", 0, default={}) or {}


def env_refs(container: dict[str, Any]) -> dict[str, Any]:
    """name -> literal value, or (secret name, key) for a secretKeyRef."""
    out: dict[str, Any] = {}
    for entry in container.get("env") or []:
        ref = dig(entry, "valueFrom", "secretKeyRef")
        out[entry["name"]] = (ref["name"], ref["key"]) if ref else entry.get("value")
    return out


def check_pods(r: Rendered, appversion: str, sqlite: bool = False, tls: bool = False) -> dict[str, Any]:
    deployment = r.one("Deployment")
    if not deployment:
        return {}
    pod = dig(deployment, "spec", "template", "spec", default={})
    container = container_of(deployment)
    name = r.name
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    check(ports == {"grpc": 50051, "http": 8080}, f"[{name}] container ports {ports}")
    check(container.get("image", "").endswith(f":{appversion}") or r.name == "production",
          f"[{name}] image {container.get('image')} does not default to appVersion {appversion}")

    # Native gRPC probes: liveness and startup on "liveness", readiness on the API's name. With
    # TLS on the gRPC port (which the kubelet's gRPC probe cannot speak), the HTTP port's twins.
    for probe, service, path in (("startupProbe", "liveness", "/healthz"), ("livenessProbe", "liveness", "/healthz"),
                                 ("readinessProbe", "capture.v1.CaptureService", "/readyz")):
        spec = container.get(probe) or {}
        if tls:
            check(set(spec) & {"grpc", "httpGet", "tcpSocket", "exec"} == {"httpGet"}, f"[{name}] {probe} is not an HTTP probe: {spec}")
            check(dig(spec, "httpGet", "path") == path and dig(spec, "httpGet", "port") == "http",
                  f"[{name}] {probe} does not ask {path} on the HTTP port: {spec}")
            continue
        check(set(spec) & {"grpc", "httpGet", "tcpSocket", "exec"} == {"grpc"}, f"[{name}] {probe} is not a gRPC probe: {spec}")
        check(dig(spec, "grpc", "port") == ports.get("grpc"), f"[{name}] {probe} not on the gRPC port: {spec}")
        check(dig(spec, "grpc", "service") == service, f"[{name}] {probe} asks for {dig(spec, 'grpc', 'service')!r}, not {service!r}")

    # Restricted security context.
    psc, csc = pod.get("securityContext") or {}, container.get("securityContext") or {}
    either = lambda key: csc.get(key, psc.get(key))  # noqa: E731 — the container's wins
    check(csc.get("readOnlyRootFilesystem") is True, f"[{name}] readOnlyRootFilesystem is not true")
    check(csc.get("allowPrivilegeEscalation") is False, f"[{name}] allowPrivilegeEscalation is not false")
    check(dig(csc, "capabilities", "drop") == ["ALL"], f"[{name}] capabilities do not drop ALL")
    check(either("runAsNonRoot") is True, f"[{name}] runAsNonRoot is not true")
    check(either("runAsUser") == 65532, f"[{name}] runAsUser is {either('runAsUser')}")
    check(dig(either("seccompProfile"), "type") == "RuntimeDefault", f"[{name}] seccompProfile is not RuntimeDefault")
    check(pod.get("automountServiceAccountToken") is False, f"[{name}] the pod mounts a service account token")
    check(pod.get("enableServiceLinks") is False, f"[{name}] service links would inject CAPTURE_* variables")
    check(pod.get("serviceAccountName") == FULLNAME, f"[{name}] serviceAccountName {pod.get('serviceAccountName')}")

    # Settings in the ConfigMap; a change of it or of the Secret rolls the pods.
    pod_annotations = dig(deployment, "spec", "template", "metadata", "annotations", default={}) or {}
    for key in ("checksum/config", "checksum/secret"):
        check(re.fullmatch(r"[0-9a-f]{64}", str(pod_annotations.get(key, ""))), f"[{name}] no {key} annotation on the pod template")
    configmap = next((c for c in r.all("ConfigMap") if dig(c, "metadata", "name") == FULLNAME), {})
    check(configmap, f"[{name}] no settings ConfigMap")
    check({"configMapRef": {"name": FULLNAME}} in (container.get("envFrom") or []), f"[{name}] the settings ConfigMap is not loaded with envFrom")
    data = configmap.get("data") or {}
    expected = {
        "CAPTURE_GRPC_ADDR": "0.0.0.0:50051",
        "CAPTURE_HTTP_ADDR": "0.0.0.0:8080",
        "CAPTURE_SANDBOX": "off",
        "CAPTURE_LOG_FORMAT": "json",
        "CAPTURE_DEV_API_KEY_FILE": "",
        "CAPTURE_MIGRATE_ON_START": "true" if sqlite else "false",
    }
    for key, value in expected.items():
        check(data.get(key) == value, f"[{name}] ConfigMap {key} is {data.get(key)!r}, expected {value!r}")
    check(not any(re.search(r"postgres://|[0-9a-f]{64}", str(v)) for v in data.values()), f"[{name}] a secret value is in the ConfigMap")
    # Traces: exported only where tracing.otlpEndpoint is set.
    otlp = "http://otel-collector.observability:4317" if name == "production" else None
    check(data.get("CAPTURE_OTLP_ENDPOINT") == otlp, f"[{name}] ConfigMap CAPTURE_OTLP_ENDPOINT is {data.get('CAPTURE_OTLP_ENDPOINT')!r}, expected {otlp!r}")
    env = env_refs(container)
    check(not any(isinstance(v, str) and "postgres://" in v for v in env.values()), f"[{name}] the database URL is a literal env value")

    # Spread over nodes and zones, as a preference.
    spread = pod.get("topologySpreadConstraints") or []
    check({c.get("topologyKey") for c in spread} >= {"kubernetes.io/hostname", "topology.kubernetes.io/zone"},
          f"[{name}] topologySpreadConstraints {spread}")
    check(all(c.get("whenUnsatisfiable") == "ScheduleAnyway" for c in spread), f"[{name}] spread is not ScheduleAnyway")

    # The Service (and so the PDB and HPA) selects the server's pods only.
    service = r.one("Service")
    selector = dig(service, "spec", "selector", default={}) or {}
    pod_labels = dig(deployment, "spec", "template", "metadata", "labels", default={}) or {}
    check(selector and selector.items() <= pod_labels.items(), f"[{name}] the Service does not select the pods")
    check(dig(deployment, "spec", "selector", "matchLabels") == selector, f"[{name}] Deployment and Service selectors differ")
    service_ports = {p["name"]: p["port"] for p in dig(service, "spec", "ports", default=[]) or []}
    check(service_ports == {"grpc": 50051, "http": 8080}, f"[{name}] Service ports {service_ports}")
    for job in r.all("Job"):
        labels = dig(job, "spec", "template", "metadata", "labels", default={}) or {}
        check(not selector.items() <= labels.items(), f"[{name}] the Service selects the migration Job's pods")
    for pdb in r.all("PodDisruptionBudget"):
        check(pdb["apiVersion"] == "policy/v1", f"[{name}] PDB apiVersion {pdb['apiVersion']}")
        check(dig(pdb, "spec", "selector", "matchLabels") == selector, f"[{name}] the PDB does not select the server's pods")

    sa = r.one("ServiceAccount")
    check(sa.get("automountServiceAccountToken") is False, f"[{name}] ServiceAccount automounts its token")
    return deployment


def check_secrets(r: Rendered, deployment: dict[str, Any]) -> None:
    """The release's Secret is no hook; the migration Job reads only hook Secrets (created
    before it) or existing Secrets, never the release's (absent at pre-install)."""
    name = r.name
    release_secrets = {dig(s, "metadata", "name") for s in r.all("Secret") if not is_hook(s)}
    hook_secrets = {dig(s, "metadata", "name"): s for s in r.all("Secret") if is_hook(s)}
    for secret in r.all("Secret"):
        if dig(secret, "metadata", "name") == FULLNAME:
            check(not is_hook(secret), f"[{name}] the chart's Secret is a hook, outside the release")
    # Every chart-managed secretKeyRef of the server points at a key the chart's Secret has.
    own = next((s for s in r.all("Secret") if dig(s, "metadata", "name") == FULLNAME), {})
    for var, ref in env_refs(container_of(deployment)).items():
        if isinstance(ref, tuple) and ref[0] == FULLNAME:
            check(ref[1] in (own.get("stringData") or {}), f"[{name}] {var} refers to key {ref[1]} the chart's Secret lacks")
    for job in r.all("Job"):
        hook = annotations(job).get("helm.sh/hook", "")
        check(set(hook.split(",")) == {"pre-install", "pre-upgrade"}, f"[{name}] migration Job hook is {hook!r}")
        container = container_of(job)
        check(container.get("args") == ["migrate"], f"[{name}] the migration Job does not run `migrate`")
        job_weight = int(annotations(job).get("helm.sh/hook-weight", "0"))
        refs = [ref[0] for ref in env_refs(container).values() if isinstance(ref, tuple)]
        refs += [dig(v, "secret", "secretName") for v in dig(job, "spec", "template", "spec", "volumes", default=[]) if dig(v, "secret")]
        for secret in refs:
            check(secret not in release_secrets, f"[{name}] the migration hook reads the release Secret {secret}, absent at pre-install")
            if secret in hook_secrets:
                weight = int(annotations(hook_secrets[secret]).get("helm.sh/hook-weight", "0"))
                check(weight < job_weight, f"[{name}] hook Secret {secret} (weight {weight}) is not created before the Job ({job_weight})")
        check(dig(job, "spec", "template", "spec", "automountServiceAccountToken") is False, f"[{name}] the Job mounts a token")
        check(dig(container, "securityContext", "readOnlyRootFilesystem") is True, f"[{name}] the Job's root filesystem is writable")


# ---------------------------------------------------------------- exposure and monitoring


def check_ingress(r: Rendered, host: str) -> None:
    ingress = r.one("Ingress")
    rules = dig(ingress, "spec", "rules", default=[]) or []
    check(len(rules) == 1 and rules[0].get("host") == host, f"[{r.name}] Ingress rules {rules}")
    paths = [p for rule in rules for p in dig(rule, "http", "paths", default=[]) or []]
    check(paths, f"[{r.name}] the Ingress has no paths")
    for path in paths:
        check(path.get("path") == "/webhooks/" and path.get("pathType") == "Prefix",
              f"[{r.name}] the Ingress exposes {path.get('path')!r} ({path.get('pathType')}), not only /webhooks/")
        port = dig(path, "backend", "service", "port", default={})
        check(port in ({"name": "http"}, {"number": 8080}), f"[{r.name}] the Ingress routes to port {port}, not http")
        check(dig(path, "backend", "service", "name") == FULLNAME, f"[{r.name}] the Ingress routes elsewhere")
    tls = dig(ingress, "spec", "tls", default=[]) or []
    check(any(host in (t.get("hosts") or []) for t in tls), f"[{r.name}] the Ingress has no TLS for {host}")


def rule_ports(rule: dict[str, Any]) -> set[tuple[Any, str]]:
    return {(p.get("port"), p.get("protocol", "TCP")) for p in rule.get("ports") or []}


def check_network_policy(r: Rendered, values: dict[str, Any]) -> None:
    policy = next((p for p in r.all("NetworkPolicy") if not is_hook(p)), {})
    if not check(policy, f"[{r.name}] no NetworkPolicy"):
        return
    spec = policy["spec"]
    check(set(spec.get("policyTypes", [])) == {"Ingress", "Egress"}, f"[{r.name}] policyTypes {spec.get('policyTypes')}")
    np = values["networkPolicy"]
    ingress = spec.get("ingress") or []
    for rule in ingress:
        check(rule.get("from"), f"[{r.name}] an ingress rule without `from` admits everyone: {rule}")
    grpc = [rule for rule in ingress if (50051, "TCP") in rule_ports(rule)]
    http = [rule for rule in ingress if (8080, "TCP") in rule_ports(rule)]
    check(len(grpc) == 1 and grpc[0]["from"] == np["grpcFrom"], f"[{r.name}] gRPC ingress is not from networkPolicy.grpcFrom: {grpc}")
    http_peers = [peer for rule in http for peer in rule.get("from") or []]
    check(np["ingressController"] in http_peers and np["monitoring"] in http_peers,
          f"[{r.name}] HTTP ingress is not from the ingress controller and monitoring: {http_peers}")
    egress = spec.get("egress") or []
    ports = set().union(*(rule_ports(rule) for rule in egress)) if egress else set()
    check({(53, "UDP"), (53, "TCP"), (443, "TCP"), (5432, "TCP")} <= ports, f"[{r.name}] egress ports {ports}")
    database = [rule for rule in egress if (5432, "TCP") in rule_ports(rule)]
    check(database and all(rule.get("to") == np["database"]["to"] for rule in database), f"[{r.name}] database egress {database}")
    hooks = [p for p in r.all("NetworkPolicy") if is_hook(p)]
    if r.all("Job"):
        check(len(hooks) == 1, f"[{r.name}] the migration Job has no NetworkPolicy of its own")


def metric_names(text: str) -> set[str]:
    return set(METRIC_NAME.findall(text))


def check_metric_names(where: str, text: str) -> None:
    unknown = metric_names(text) - EXPORTED - GRPC_LABELS
    check(not unknown, f"{where} uses names the service does not export: {sorted(unknown)}")


def check_monitoring(r: Rendered, values: dict[str, Any]) -> None:
    service = r.one("Service")
    monitor = r.one("ServiceMonitor")
    check(monitor.get("apiVersion") == "monitoring.coreos.com/v1", f"[{r.name}] ServiceMonitor apiVersion")
    endpoints = dig(monitor, "spec", "endpoints", default=[]) or []
    check(any(e.get("port") == "http" and e.get("path") == "/metrics" for e in endpoints), f"[{r.name}] ServiceMonitor endpoints {endpoints}")
    selector = dig(monitor, "spec", "selector", "matchLabels", default={}) or {}
    check(selector and selector.items() <= (dig(service, "metadata", "labels", default={}) or {}).items(),
          f"[{r.name}] the ServiceMonitor does not select the Service")
    check((values["serviceMonitor"]["labels"]).items() <= (dig(monitor, "metadata", "labels", default={}) or {}).items(),
          f"[{r.name}] ServiceMonitor lacks serviceMonitor.labels")

    rule = r.one("PrometheusRule")
    alerts = {a["alert"]: a for g in dig(rule, "spec", "groups", default=[]) or [] for a in g.get("rules", []) if "alert" in a}
    p = values["prometheusRule"]
    expected: dict[str, tuple[list[str], str | None]] = {
        "CaptureReconcilerBacklogOld": (["capture_reconciler_oldest_due_seconds", f"> {p['reconcilerOldestDueMinutes'] * 60}"], "5m"),
        "CaptureProviderErrorRatioHigh": (["capture_provider_calls_total", 'outcome=~"unknown|timeout|error"', f"> {p['providerErrorRatio']}"], None),
        "CaptureWebhookBadSignatures": (["capture_webhooks_total", 'result="bad_signature"', "rate(", "> 0"], f"{p['webhookBadSignatureMinutes']}m"),
        "CaptureStoreUnavailable": (["increase(capture_store_unavailable_total", "> 0"], None),
        "CaptureSheddingSustained": (["rate(capture_shed_total", "> 0"], f"{p['sheddingMinutes']}m"),
    }
    for alert, (fragments, duration) in expected.items():
        if not check(alert in alerts, f"[{r.name}] no alert {alert}: {sorted(alerts)}"):
            continue
        expr = " ".join(alerts[alert]["expr"].split())
        for fragment in fragments:
            check(fragment in expr, f"[{r.name}] {alert} expr lacks {fragment!r}: {expr}")
        if duration:
            check(alerts[alert].get("for") == duration, f"[{r.name}] {alert} for {alerts[alert].get('for')}, expected {duration}")
        check(f'namespace="{NAMESPACE}"' in expr, f"[{r.name}] {alert} is not scoped to the release")
    for alert in alerts.values():
        check_metric_names(f"[{r.name}] alert {alert['alert']}", alert["expr"])
        check(alert.get("labels", {}).get("severity"), f"[{r.name}] {alert['alert']} has no severity")
        expr = alert["expr"]
        check(expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), f"[{r.name}] {alert['alert']} expr unbalanced: {expr}")

    board = next((c for c in r.all("ConfigMap") if dig(c, "metadata", "labels", "grafana_dashboard") == "1"), None)
    if check(board, f"[{r.name}] no dashboard ConfigMap labelled grafana_dashboard: \"1\""):
        (text,) = board["data"].values()
        check(text == DASHBOARD.read_text().rstrip("\n"), f"[{r.name}] the dashboard ConfigMap is not dashboards/capture-service.json")


def check_dashboard_file() -> None:
    text = DASHBOARD.read_text()
    try:
        board = json.loads(text)
    except json.JSONDecodeError as e:
        check(False, f"{DASHBOARD.name} is not JSON: {e}")
        return
    exprs = [t.get("expr", "") for panel in board.get("panels", []) for t in panel.get("targets", [])]
    check(len(exprs) >= 10, f"{DASHBOARD.name} has only {len(exprs)} queries")
    joined = "\n".join(exprs)
    for needed in ("grpc_server_handled_total", "grpc_server_handling_seconds_bucket", "capture_provider_calls_total",
                   "capture_provider_call_seconds_bucket", "capture_status_changes_total", "capture_reconciler_due",
                   "capture_webhooks_total", "capture_shed_total"):
        check(needed in joined, f"{DASHBOARD.name} has no panel on {needed}")
    check_metric_names(DASHBOARD.name, text)
    check_metric_names(RULES_TEMPLATE.name, RULES_TEMPLATE.read_text())


# ---------------------------------------------------------------- the scenarios


def main() -> None:
    chart = helm.Chart.load(str(CHART))
    appversion = str(chart.metadata.get("appVersion"))
    check(chart.schema is not None and chart.schema.get("$schema", "").startswith("http://json-schema.org/draft-07"),
          "values.schema.json is missing or not draft-07")
    production = yaml.safe_load(PRODUCTION.read_text())

    # 1. The defaults (with the database URL they require).
    lint("defaults", DEFAULTS)
    r = render(chart, "defaults", DEFAULTS)
    if r:
        check(r.kinds() == {"ConfigMap", "Deployment", "Job", "PodDisruptionBudget", "Secret", "Service", "ServiceAccount"},
              f"[defaults] kinds {sorted(r.kinds())}")
        deployment = check_pods(r, appversion)
        check(dig(deployment, "spec", "replicas") == 2, "[defaults] replicas is not 2")
        check(container_of(deployment)["image"] == f"capture-service:{appversion}", "[defaults] image is not the appVersion")
        env = env_refs(container_of(deployment))
        check(env.get("CAPTURE_DATABASE_URL") == (FULLNAME, "CAPTURE_DATABASE_URL"), f"[defaults] database URL {env.get('CAPTURE_DATABASE_URL')}")
        check(env.get("CAPTURE_API_KEYS") == (FULLNAME, "CAPTURE_API_KEYS"), f"[defaults] API keys {env.get('CAPTURE_API_KEYS')}")
        check({"secretRef": {"name": "capture-providers"}} in container_of(deployment).get("envFrom", []), "[defaults] providers Secret not loaded")
        check(r.one("Secret", hook=False).get("stringData") == {"CAPTURE_DATABASE_URL": POSTGRES_URL, "CAPTURE_API_KEYS": DIGESTS},
              "[defaults] the chart's Secret does not hold the database URL and API keys")
        check(r.one("Secret", hook=True).get("stringData") == {"CAPTURE_DATABASE_URL": POSTGRES_URL},
              "[defaults] the migration hook's Secret does not hold just the database URL")
        check_secrets(r, deployment)

        # A change of settings rolls the pods through checksum/config, of a secret through checksum/secret.
        def checksums(values: dict[str, Any]) -> dict[str, str]:
            again = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
            doc = yaml.safe_load(again["capture-service/templates/deployment.yaml"])
            found = dig(doc, "spec", "template", "metadata", "annotations", default={}) or {}
            return {key: found.get(key) for key in ("checksum/config", "checksum/secret")}

        base = checksums(DEFAULTS)
        logs = checksums(merged(DEFAULTS, {"log": {"filter": "debug"}}))
        keys = checksums(merged(DEFAULTS, {"apiKeys": {"digests": "other:" + "1" * 64}}))
        check(base["checksum/config"] != logs["checksum/config"] and base["checksum/secret"] == logs["checksum/secret"],
              "[defaults] checksum/config does not follow the ConfigMap")
        check(base["checksum/secret"] != keys["checksum/secret"] and base["checksum/config"] == keys["checksum/config"],
              "[defaults] checksum/secret does not follow the Secret")

    # 2. Production: everything on, every secret from an existing Secret.
    lint("production", production)
    r = render(chart, "production", production)
    if r:
        check(r.kinds() >= {"ConfigMap", "Deployment", "Job", "PodDisruptionBudget", "Service", "ServiceAccount",
                            "HorizontalPodAutoscaler", "Ingress", "NetworkPolicy", "ServiceMonitor", "PrometheusRule"},
              f"[production] kinds {sorted(r.kinds())}")
        deployment = check_pods(r, appversion)
        check("replicas" not in deployment.get("spec", {}), "[production] the Deployment fixes replicas under an HPA")
        hpa = r.one("HorizontalPodAutoscaler")
        check(hpa.get("apiVersion") == "autoscaling/v2", "[production] HPA is not autoscaling/v2")
        check(dig(hpa, "spec", "scaleTargetRef") == {"apiVersion": "apps/v1", "kind": "Deployment", "name": FULLNAME}, "[production] HPA target")
        check((dig(hpa, "spec", "minReplicas"), dig(hpa, "spec", "maxReplicas")) == (3, 12), "[production] HPA bounds")
        check(not r.all("Secret"), f"[production] Secrets rendered although every secret is an existingSecret: {[dig(s, 'metadata', 'name') for s in r.all('Secret')]}")
        env = env_refs(container_of(deployment))
        check(env.get("CAPTURE_DATABASE_URL") == ("capture-database", "CAPTURE_DATABASE_URL"), "[production] database URL Secret")
        check(env.get("CAPTURE_API_KEYS") == ("capture-api-keys", "CAPTURE_API_KEYS"), "[production] API keys dropped with existing Secrets")
        volumes = dig(deployment, "spec", "template", "spec", "volumes", default=[])
        check(any(dig(v, "secret", "secretName") == "capture-config" for v in volumes), "[production] config file Secret not mounted")
        settings = next(c for c in r.all("ConfigMap") if dig(c, "metadata", "name") == FULLNAME)["data"]
        check(settings.get("CAPTURE_CONFIG") == "/etc/capture-service/capture.toml", "[production] CAPTURE_CONFIG")
        check(settings.get("CAPTURE_MAX_CAPTURES_IN_FLIGHT") == "512", "[production] settings not in the ConfigMap")
        check(dig(container_of(deployment), "lifecycle", "preStop", "sleep", "seconds") == 5, "[production] preStop sleep")
        check_secrets(r, deployment)
        check_ingress(r, production["ingress"]["host"])
        check_network_policy(r, production)
        check_monitoring(r, production)

    # 3. An existing database Secret no longer drops the API keys.
    values = merged(DEFAULTS, {"database": {"url": "", "existingSecret": "capture-database"}})
    r = render(chart, "existing database Secret", values)
    if r:
        deployment = check_pods(r, appversion)
        env = env_refs(container_of(deployment))
        check(env.get("CAPTURE_DATABASE_URL") == ("capture-database", "CAPTURE_DATABASE_URL"), f"[{r.name}] database URL {env.get('CAPTURE_DATABASE_URL')}")
        check(env.get("CAPTURE_API_KEYS") == (FULLNAME, "CAPTURE_API_KEYS"), f"[{r.name}] apiKeys silently dropped")
        check(r.one("Secret", hook=False).get("stringData") == {"CAPTURE_API_KEYS": DIGESTS}, f"[{r.name}] chart Secret")
        check(not [s for s in r.all("Secret") if is_hook(s)], f"[{r.name}] a hook Secret although the URL is in an existing Secret")
        check_secrets(r, deployment)

    # 4. An inline config file: in the chart's Secret for the pods, in the hook's for the Job.
    values = merged(DEFAULTS, {"configFile": {"content": '[[providers.paypal]]\nname = "eu"\nclient_id = "x"\nclient_secret = "y"\n'}})
    r = render(chart, "inline config file", values)
    if r:
        deployment = check_pods(r, appversion)
        check("capture.toml" in (r.one("Secret", hook=False).get("stringData") or {}), f"[{r.name}] config file not in the chart's Secret")
        check("capture.toml" in (r.one("Secret", hook=True).get("stringData") or {}), f"[{r.name}] config file not in the hook's Secret")
        mounts = {m["name"]: m["mountPath"] for m in container_of(deployment).get("volumeMounts", [])}
        check(mounts.get("config-file") == "/etc/capture-service", f"[{r.name}] config file not mounted: {mounts}")
        check_secrets(r, deployment)
    r = render(chart, "config file from a ConfigMap", merged(DEFAULTS, {"configFile": {"existingConfigMap": "capture-config"}}))
    if r:
        volumes = dig(r.one("Deployment"), "spec", "template", "spec", "volumes", default=[])
        check(any(dig(v, "configMap", "name") == "capture-config" for v in volumes), f"[{r.name}] ConfigMap not mounted")

    # 5. SQLite: one replica, no migration Job (the pod migrates its own file), Recreate.
    sqlite = {"replicaCount": 1, "database": {"url": "sqlite:///data/capture.db?mode=rwc"}, "apiKeys": {"digests": DIGESTS},
              "extraVolumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "capture-data"}}],
              "extraVolumeMounts": [{"name": "data", "mountPath": "/data"}]}
    lint("sqlite", sqlite)
    r = render(chart, "sqlite", sqlite)
    if r:
        deployment = check_pods(r, appversion, sqlite=True)
        check(not r.all("Job"), f"[{r.name}] a migration Job with SQLite")
        check(dig(deployment, "spec", "strategy", "type") == "Recreate", f"[{r.name}] strategy is not Recreate")
        check(dig(deployment, "spec", "replicas") == 1, f"[{r.name}] replicas")

    # 5b. TLS on the gRPC port, client certificates mapped to tenants.
    tls = merged(DEFAULTS, {"grpcTls": {"secretName": "capture-grpc-tls", "clientCertificates": [
        {"dnsName": "orders.acme.internal", "tenant": "acme"}, {"dnsName": "billing.beta.internal", "tenant": "beta"}]}})
    lint("grpc tls", tls)
    r = render(chart, "grpc tls", tls)
    if r:
        deployment = check_pods(r, appversion, tls=True)
        settings = next(c for c in r.all("ConfigMap") if dig(c, "metadata", "name") == FULLNAME)["data"]
        expected = {"CAPTURE_GRPC_TLS_CERT": "/etc/capture-grpc-tls/tls.crt", "CAPTURE_GRPC_TLS_KEY": "/etc/capture-grpc-tls/tls.key",
                    "CAPTURE_GRPC_TLS_CLIENT_CA": "/etc/capture-grpc-tls/ca.crt",
                    "CAPTURE_CLIENT_CERT_TENANTS": "orders.acme.internal=acme,billing.beta.internal=beta"}
        check({k: settings.get(k) for k in expected} == expected, f"[{r.name}] TLS settings {settings}")
        volumes = dig(deployment, "spec", "template", "spec", "volumes", default=[])
        check(any(dig(v, "secret", "secretName") == "capture-grpc-tls" for v in volumes), f"[{r.name}] TLS Secret not a volume")
        mounts = {m["name"]: m["mountPath"] for m in container_of(deployment).get("volumeMounts", [])}
        check(mounts.get("grpc-tls") == "/etc/capture-grpc-tls", f"[{r.name}] TLS Secret not mounted: {mounts}")
    r = render(chart, "defaults without TLS", DEFAULTS)
    if r:
        settings = next(c for c in r.all("ConfigMap") if dig(c, "metadata", "name") == FULLNAME)["data"]
        check(not any(k.startswith("CAPTURE_GRPC_TLS") for k in settings), f"[{r.name}] TLS settings without a Secret")

    # 6. What the chart must refuse.
    refuses(chart, "no database", {}, "database.url")
    refuses(chart, "client certificate without a tenant",
            merged(DEFAULTS, {"grpcTls": {"secretName": "s", "clientCertificates": [{"dnsName": "a.example"}]}}), "tenant")
    refuses(chart, "sqlite, 2 replicas", merged(sqlite, {"replicaCount": 2}), "SQLite")
    refuses(chart, "sqlite, autoscaling", merged(sqlite, {"autoscaling": {"enabled": True}}), "SQLite")
    refuses(chart, "ingress without host", merged(DEFAULTS, {"ingress": {"enabled": True}}), "ingress.host")
    refuses(chart, "network policy without database", merged(DEFAULTS, {"networkPolicy": {"enabled": True}}), "networkPolicy.database.to")
    refuses(chart, "two config file sources", merged(DEFAULTS, {"configFile": {"content": "x = 1", "existingSecret": "c"}}), "at most one")
    refuses(chart, "a secret in settings", merged(DEFAULTS, {"settings": {"CAPTURE_PAYPAL_CLIENT_SECRET": "s"}}), "looks like a secret")
    refuses(chart, "schema: apiKeys as a string", merged(DEFAULTS, {"apiKeys": DIGESTS}), "apiKeys")
    refuses(chart, "schema: unknown key", merged(DEFAULTS, {"replicas": 3}), "replicas")
    refuses(chart, "schema: sandbox", merged(DEFAULTS, {"sandbox": "yes"}), "sandbox")
    refuses(chart, "schema: a digest that is no SHA-256", merged(DEFAULTS, {"apiKeys": {"digests": "team:abc"}}), "digests")

    # 7. Only exported metric names in the alerts and the dashboard.
    check_dashboard_file()

    if problems:
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        print(f"chart check failed: {len(problems)} of {counts['assertions']} checks", file=sys.stderr)
        sys.exit(1)
    print(
        f"chart ok: {counts['value sets']} value sets rendered, {counts['manifests']} manifests "
        f"({counts['validated']} schema validations for Kubernetes {' and '.join(KUBE_VERSIONS)}, "
        f"{counts['crds']} monitoring.coreos.com objects checked structurally), "
        f"{counts['refusals']} refusals, {counts['assertions']} checks passed"
    )


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # a broken render or an unexpected shape: still one clear line
        import traceback

        traceback.print_exc()
        print(f"chart check failed: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
