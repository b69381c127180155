#!/usr/bin/env python3
"""Lints and renders the chart with Helm's own Go SDK (helm-python-sdk), validates every
rendered manifest against the Kubernetes schemas (kubernetes-validate), and checks what the
service needs from it. Exits non-zero on any problem. Run by .ci/run."""

import sys
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import yaml

CHART = Path(__file__).resolve().parent / "capture-service"
KUBE_VERSION = "1.30.0"
VALUES = {
    "database": {"url": "postgres://capture:secret@postgres:5432/capture"},
    "apiKeys": "team:" + "0" * 64,
    "providers": {"existingSecret": "capture-providers"},
}


def fail(message: str) -> None:
    print(f"chart check failed: {message}", file=sys.stderr)
    sys.exit(1)


def main() -> None:
    report = helm.lint(str(CHART), VALUES, strict=True, kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    if report.get("errors") or problems:
        fail(f"helm lint: {report}")

    chart = helm.Chart.load(str(CHART))
    rendered = chart.render(VALUES, name="capture", namespace="payments", is_install=True)
    documents = [
        doc
        for path, text in rendered.items()
        if not path.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if isinstance(doc, dict)
    ]
    kinds = {}
    for doc in documents:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        kinds[doc["kind"]] = doc
    for kind in ("Deployment", "Service", "Secret", "Job"):
        if kind not in kinds:
            fail(f"no {kind} rendered: {sorted(kinds)}")

    container = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    expected = {
        "CAPTURE_SANDBOX": "off",
        "CAPTURE_GRPC_ADDR": "0.0.0.0:50051",
        "CAPTURE_MIGRATE_ON_START": "false",
        "CAPTURE_LOG_FORMAT": "json",
    }
    for name, value in expected.items():
        if env.get(name) != value:
            fail(f"{name} is {env.get(name)!r}, expected {value!r}")
    if "CAPTURE_DATABASE_URL" not in env:
        fail("the database URL is not passed")
    if container["readinessProbe"]["httpGet"]["path"] != "/readyz":
        fail("readiness probe is not /readyz")
    if container.get("envFrom", [{}])[0].get("secretRef", {}).get("name") != "capture-providers":
        fail("provider credentials secret is not mounted")
    if kinds["Job"]["spec"]["template"]["spec"]["containers"][0]["args"] != ["migrate"]:
        fail("the migration job does not run `migrate`")

    try:
        chart.render({}, name="capture", namespace="payments", is_install=True)
    except helm.HelmError:
        pass
    else:
        fail("rendering without a database URL should fail")
    print(f"chart ok: {len(documents)} manifests valid for Kubernetes {KUBE_VERSION}")


if __name__ == "__main__":
    main()
