"""Checks the monitoring as code (run by deploy/test).

- k8s/components/monitoring/monitoring.yaml holds a PodMonitor and a PrometheusRule of the
  Prometheus Operator (monitoring.coreos.com/v1), in a kustomize component the prod overlay
  adds; the base renders none of them, so it applies on a cluster without the operator's CRDs.
  Both carry the label kube-prometheus-stack selects by (`release`). kubernetes-validate has no schema for these custom
  resources, so their fields are checked here against the ones the operator's CRDs define
  (only those we use are allowed).
- The rule groups are written to a file and checked by `promtool check rules`, then run
  against deploy/monitoring/rules.test.yaml by `promtool test rules`; every alert has a
  severity, a summary, a description, a runbook_url naming its page in docs/runbooks/ (which
  says what it means, what to check and what to do), and at least one unit test.
- Every metric a rule or the Grafana dashboard (deploy/monitoring/dashboard.json) names is one
  the code records (or one of kube-state-metrics' and Prometheus' own).
"""

import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
MONITORING = ROOT / "k8s/components/monitoring/monitoring.yaml"
RUNBOOKS = ROOT / "docs/runbooks"
# Where the center publishes docs/ (the alerts' runbook_url names pages under it).
RUNBOOK_BASE = "https://docs.example.kz/examreg/runbooks/"
RUNBOOK_SECTIONS = ("## What it means", "## What to check", "## What to do")
TESTS = ROOT / "deploy/monitoring/rules.test.yaml"
DASHBOARD = ROOT / "deploy/monitoring/dashboard.json"

problems = []


def problem(text):
    problems.append(text)


# The fields of the operator's CRDs (v1) that examreg uses; anything else is a typo or needs
# adding here after checking the CRD.
METADATA = {"name", "labels", "annotations", "namespace"}
PODMONITOR = {
    "spec": {"selector", "podMetricsEndpoints", "namespaceSelector", "jobLabel", "podTargetLabels"},
    "endpoint": {"port", "path", "interval", "scrapeTimeout", "relabelings", "metricRelabelings", "scheme"},
    "relabeling": {"sourceLabels", "targetLabel", "regex", "replacement", "action", "separator"},
}
RULE = {
    "group": {"name", "rules", "interval"},
    "alert": {"alert", "expr", "for", "labels", "annotations"},
    "record": {"record", "expr", "labels"},
}


def unknown(where, value, allowed):
    if not isinstance(value, dict):
        problem(f"{where}: expected a mapping")
        return
    extra = set(value) - allowed
    if extra:
        problem(f"{where}: unknown fields {sorted(extra)}")


def check_podmonitor(doc):
    unknown("PodMonitor", doc, {"apiVersion", "kind", "metadata", "spec"})
    unknown("PodMonitor.metadata", doc.get("metadata", {}), METADATA)
    spec = doc.get("spec", {})
    unknown("PodMonitor.spec", spec, PODMONITOR["spec"])
    if not spec.get("selector", {}).get("matchLabels"):
        problem("PodMonitor: selects no pods")
    endpoints = spec.get("podMetricsEndpoints") or []
    ports = {e.get("port") for e in endpoints}
    if ports != {"ops"}:
        problem(f"PodMonitor: scrapes {sorted(map(str, ports))}, not the operators' port (ops) only")
    for i, endpoint in enumerate(endpoints):
        unknown(f"PodMonitor endpoint {i}", endpoint, PODMONITOR["endpoint"])
        if endpoint.get("path") != "/metrics":
            problem(f"PodMonitor endpoint {i}: the services serve /metrics")
        for j, relabeling in enumerate(endpoint.get("relabelings", [])):
            unknown(f"PodMonitor endpoint {i} relabeling {j}", relabeling, PODMONITOR["relabeling"])


def check_rule(doc):
    unknown("PrometheusRule", doc, {"apiVersion", "kind", "metadata", "spec"})
    unknown("PrometheusRule.metadata", doc.get("metadata", {}), METADATA)
    unknown("PrometheusRule.spec", doc.get("spec", {}), {"groups"})
    alerts = []
    for group in doc["spec"].get("groups", []):
        unknown(f"group {group.get('name')}", group, RULE["group"])
        for rule in group.get("rules", []):
            kind = "alert" if "alert" in rule else "record"
            unknown(f"rule {rule.get(kind)}", rule, RULE[kind])
            if kind == "alert":
                alerts.append(rule)
                if rule.get("labels", {}).get("severity") not in ("critical", "warning"):
                    problem(f"alert {rule['alert']}: severity critical or warning")
                annotations = rule.get("annotations", {})
                for key in ("summary", "description"):
                    if not annotations.get(key):
                        problem(f"alert {rule['alert']}: no {key}")
                page = f"{rule['alert']}.md"
                if annotations.get("runbook_url") != RUNBOOK_BASE + page:
                    problem(f"alert {rule['alert']}: runbook_url is not {RUNBOOK_BASE}{page}")
                runbook = RUNBOOKS / page
                if not runbook.exists():
                    problem(f"alert {rule['alert']}: docs/runbooks/{page} is missing")
                else:
                    text = runbook.read_text()
                    for section in RUNBOOK_SECTIONS:
                        if section not in text:
                            problem(f"docs/runbooks/{page}: no {section!r}")
    return alerts


def run(command, cwd):
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        problem(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")


def recorded_metrics():
    """The metric names the code records, with a histogram's series."""
    names = set()
    pattern = re.compile(r'(?:counter|gauge|histogram)!\(\s*"([a-z_][a-z0-9_]*)"')
    histograms = re.compile(r'histogram!\(\s*"([a-z_][a-z0-9_]*)"')
    for path in ROOT.glob("**/src/**/*.rs"):
        if "target" in path.parts:
            continue
        text = path.read_text()
        names.update(pattern.findall(text))
        for name in histograms.findall(text):
            names.update({f"{name}_bucket", f"{name}_sum", f"{name}_count"})
    return names


FUNCTIONS = {
    "sum", "max", "min", "count", "avg", "rate", "increase", "deriv", "histogram_quantile",
    "by", "on", "and", "or", "unless", "offset", "without", "ignoring", "group_left",
    "abs", "absent", "clamp_min", "clamp_max", "irate", "delta", "topk", "bottomk",
}
# Scraped from kube-state-metrics, or Prometheus' own series per target, or from the exporters
# beside the stores (redis_exporter, postgres_exporter) and the kubelet's volume statistics.
EXTERNAL = re.compile(
    r"^(kube_[a-z0-9_]+|up|redis_memory_(used|max)_bytes|pg_stat_activity_count"
    r"|pg_settings_max_connections|kubelet_volume_stats_(available|capacity)_bytes)$"
)


def metrics_in(expr):
    expr = re.sub(r'"[^"]*"', "", expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\b(by|on|without|ignoring)\s*\([^)]*\)", "", expr)  # label lists
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\$__\w+", "", expr)
    words = set(re.findall(r"\b[a-z_][a-z0-9_]*\b", expr))
    return {w for w in words if w not in FUNCTIONS and "_" in w or w == "up"}


def check_names(where, expr, known):
    for name in sorted(metrics_in(expr)):
        if name not in known and not EXTERNAL.match(name):
            problem(f"{where}: {name} is not a metric the code records")


def main():
    if not shutil.which("promtool"):
        sys.exit("promtool is missing (deploy/lib.sh install_promtool)")
    docs = [d for d in yaml.safe_load_all(MONITORING.read_text()) if d]
    by_kind = {d["kind"]: d for d in docs}
    if set(by_kind) != {"PodMonitor", "PrometheusRule"}:
        problem(f"{MONITORING.name}: a PodMonitor and a PrometheusRule, found {sorted(by_kind)}")
    check_podmonitor(by_kind.get("PodMonitor", {}))
    rule = by_kind.get("PrometheusRule", {"spec": {"groups": []}})
    alerts = check_rule(rule)
    for doc in (by_kind.get("PodMonitor", {}), rule):
        labels = doc.get("metadata", {}).get("labels", {})
        if "release" not in labels:
            problem(f"{doc.get('kind')}: no `release` label (kube-prometheus-stack selects by it)")
    component = yaml.safe_load((MONITORING.parent / "kustomization.yaml").read_text())
    if component.get("kind") != "Component" or "monitoring.yaml" not in component.get("resources", []):
        problem("k8s/components/monitoring: a kustomize Component listing monitoring.yaml")
    prod = yaml.safe_load((ROOT / "k8s/overlays/prod/kustomization.yaml").read_text())
    if "../../components/monitoring" not in prod.get("components", []):
        problem("the prod overlay does not add the monitoring component")
    # The base applies on a cluster without the Prometheus Operator.
    base = subprocess.run(["kubectl", "kustomize", str(ROOT / "k8s/base")],
                          capture_output=True, text=True, check=True).stdout
    for doc in yaml.safe_load_all(base):
        if doc and doc.get("apiVersion", "").startswith("monitoring.coreos.com/"):
            problem(f"k8s/base renders a {doc['kind']}: the operator's objects belong in the component")

    known = recorded_metrics()
    for alert in alerts:
        check_names(f"alert {alert['alert']}", alert["expr"], known)

    tests = yaml.safe_load(TESTS.read_text())
    tested = {
        case["alertname"]
        for test in tests.get("tests", [])
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    for alert in alerts:
        if alert["alert"] not in tested:
            problem(f"alert {alert['alert']}: no unit test shows it firing")

    with tempfile.TemporaryDirectory() as work:
        work = pathlib.Path(work)
        (work / "rules.yaml").write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
        shutil.copy(TESTS, work / "rules.test.yaml")
        run(["promtool", "check", "rules", "rules.yaml"], work)
        run(["promtool", "test", "rules", "rules.test.yaml"], work)

    dashboard = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    if len(ids) != len(set(ids)):
        problem("dashboard: panel ids repeat")
    if not dashboard.get("uid"):
        problem("dashboard: no uid")
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            check_names(f"dashboard panel {panel['title']!r}", target["expr"], known)

    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
