"""Keeps the deployment files in step with the code (run by deploy/test).

For every service in the code it checks that the Dockerfile has its image target, that the
compose file and the Kubernetes base run it with only the variables it reads (and every one it
requires), that the configuration reference (docs/configuration.md) names every variable it reads, and that
every Kubernetes workload keeps the rules operators rely on: resources, probes, a locked-down
securityContext, Service, ServiceAccount, HPA, PDB and a NetworkPolicy. No ConfigMap holds a
variable that can carry a credential (those come from Secrets through `*_FILE`) or a value that
looks like one; the prod overlay sets what production must (no local stack's default); and
docs/internal-api.md's table of the suite's own clients is what the local stack gives them.
"""

import pathlib
import re
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
SERVICES = {
    "identity": "services/identity",
    "verification": "services/verification",
    "biometrics": "services/biometrics",
    "profile": "services/profile",
    "gateway": "gateway",
}
# Read by the shared kit in every service (its TLS settings: crates/kit/src/tls.rs).
TLS = set(re.findall(r'"(EXAMREG_TLS_[A-Z_]+)"', (ROOT / "crates/kit/src/tls.rs").read_text()))
COMMON = {"RUST_LOG", "OTEL_EXPORTER_OTLP_ENDPOINT", "EXAMREG_ENVIRONMENT"} | TLS
READ = re.compile(
    r'(?:env\s*\.\s*(string|service_url|parse|seconds|secret_or|secret|required_secret)|signing_keys?_from_env)'
    r'\(\s*(?:env\s*,\s*)?"([A-Z0-9_]+)"',
    re.S,
)
# What production must set itself: the code's defaults are the local stack's (a sender and a
# support address at examreg.local, documents valid until today, no public URL). The prod
# overlay sets each, and none may be a local value.
PRODUCTION = {
    "verification": ("VERIFICATION_MAIL_FROM", "VERIFICATION_SUPPORT_CONTACT"),
    "biometrics": ("BIOMETRICS_DOCUMENTS_VALID_UNTIL",),
    "gateway": ("GATEWAY_PUBLIC_URL", "GATEWAY_CORS_ORIGINS"),
}
SERVICE_URLS = {"IDENTITY_URL", "VERIFICATION_URL", "BIOMETRICS_URL", "PROFILE_URL"}
LOCAL_VALUE = re.compile(r"\.local\b|localhost|127\.0\.0\.1|\[::1\]")
# A service's own client at identity: `<PREFIX>_CLIENT_ID` and the required `_CLIENT_SECRET`.
CREDENTIALS = re.compile(r'Credentials::from_env\(\s*env\s*,\s*"([A-Z0-9_]+)"', re.S)

problems = []


def problem(text):
    problems.append(text)


def variables(crate):
    """(every variable the service reads, those that may come from a file, the required ones)"""
    read, secret, required = set(), set(), set()
    for path in (ROOT / crate / "src").rglob("*.rs"):
        for how, name in READ.findall(path.read_text()):
            read.add(name)
            if how in ("secret", "secret_or", "required_secret", ""):
                secret.add(name)
            if how in ("required_secret", ""):
                required.add(name)
        for prefix in CREDENTIALS.findall(path.read_text()):
            read |= {f"{prefix}_CLIENT_ID", f"{prefix}_CLIENT_SECRET"}
            secret.add(f"{prefix}_CLIENT_SECRET")
            required.add(f"{prefix}_CLIENT_SECRET")
    return read, secret, required


def check_env(where, names, read, secret, required):
    known = read | COMMON | {f"{s}_FILE" for s in secret}
    for name in sorted(set(names) - known):
        problem(f"{where}: sets {name}, which the service does not read")
    for name in sorted(required):
        if name not in names and f"{name}_FILE" not in names:
            problem(f"{where}: misses {name} (or {name}_FILE), which the service requires")


def main():
    dockerfile = (ROOT / "deploy/Dockerfile").read_text()
    compose = yaml.safe_load((ROOT / "deploy/compose.yaml").read_text())
    readme = (ROOT / "docs/configuration.md").read_text()
    rendered = {
        overlay.name: list(
            yaml.safe_load_all(
                subprocess.run(
                    ["kubectl", "kustomize", str(overlay)],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            )
        )
        for overlay in sorted((ROOT / "k8s/overlays").iterdir())
    }
    for service, crate in SERVICES.items():
        read, secret, required = variables(crate)
        if not read:
            problem(f"{service}: no configuration variables found in {crate}")
        binary = f"examreg-{service}"
        if not re.search(rf"^FROM runtime AS {service}$", dockerfile, re.M) or (
            f"/out/{binary} /usr/local/bin/{binary}" not in dockerfile
        ):
            problem(f"Dockerfile: no image target {service} with {binary}")
        entry = compose["services"].get(service)
        if entry is None:
            problem(f"compose.yaml: no service {service}")
        else:
            if entry.get("build", {}).get("target") != service:
                problem(f"compose.yaml: {service} does not build the image target {service}")
            check_env(f"compose.yaml {service}", entry.get("environment", {}), read, secret, required)
        for name in sorted(read - documented(readme)):
            problem(f"docs/configuration.md misses {name} ({service})")
        for overlay, docs in rendered.items():
            check_workload(overlay, service, docs, read, secret, required)
    check_client_scopes()
    check_edge(rendered)
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"deployment files agree with the code ({len(SERVICES)} services, {len(rendered)} overlays)")


def documented(readme):
    """Every variable the configuration reference's tables name; a row may shorten a sibling to its suffix
    (`BIOMETRICS_S3_ENDPOINT` / `_REGION`)."""
    names = set()
    for row in readme.splitlines():
        if not row.startswith("|"):
            continue
        full = None
        for token in re.findall(r"`([A-Z_][A-Z0-9_]*)`", row):
            if not token.startswith("_"):
                full = token
                names.add(token)
            elif full:
                parts = full.split("_")
                names.update("_".join(parts[:i]) + token for i in range(1, len(parts)))
    return names


def of_kind(docs, kind, name):
    return [d for d in docs if d and d.get("kind") == kind and d["metadata"]["name"].endswith(name)]


def check_workload(overlay, service, docs, read, secret, required):
    where = f"k8s/{overlay} {service}"
    deployments = of_kind(docs, "Deployment", service)
    if len(deployments) != 1:
        problem(f"{where}: expected one Deployment, found {len(deployments)}")
        return
    spec = deployments[0]["spec"]["template"]["spec"]
    labels = deployments[0]["spec"]["template"]["metadata"]["labels"]
    if not spec.get("serviceAccountName", "").endswith(service):
        problem(f"{where}: runs without its own ServiceAccount")
    if spec.get("automountServiceAccountToken") is not False:
        problem(f"{where}: mounts a Kubernetes API token it never uses")
    pod_security = spec.get("securityContext", {})
    if pod_security.get("runAsNonRoot") is not True:
        problem(f"{where}: the pod may run as root")
    for container in spec["containers"]:
        sc = container.get("securityContext", {})
        if sc.get("readOnlyRootFilesystem") is not True:
            problem(f"{where}: the root filesystem is writable")
        if sc.get("allowPrivilegeEscalation") is not False:
            problem(f"{where}: privilege escalation is allowed")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            problem(f"{where}: capabilities are not dropped")
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(resources.get(kind, {})):
                problem(f"{where}: no {kind} for cpu and memory")
        for probe in ("readinessProbe", "livenessProbe"):
            p = container.get(probe)
            if not p:
                problem(f"{where}: no {probe}")
            elif service == "gateway" and "httpGet" not in p:
                problem(f"{where}: the gateway's {probe} is not HTTP")
            elif service != "gateway" and p.get("httpGet", {}) != {"path": "/healthz", "port": "ops"}:
                # The kubelet's gRPC probe speaks no TLS: the operators' port answers for it.
                problem(f"{where}: {probe} is not /healthz on the operators' port")
        values = {e["name"]: e.get("value") for e in container.get("env", [])}
        for source in container.get("envFrom", []):
            ref = source.get("configMapRef", {}).get("name")
            maps = [d for d in docs if d and d.get("kind") == "ConfigMap" and d["metadata"]["name"] == ref]
            if not maps:
                problem(f"{where}: envFrom names a missing ConfigMap {ref}")
            for m in maps:
                values.update(m.get("data", {}))
                check_config_map(where, m, secret)
        names = set(values)
        check_env(where, names, read, secret, required)
        if overlay == "prod":
            check_production(where, service, values)
            check_certificate(where, service, docs, container, spec)
        for e in container.get("env", []):
            if "value" in e and re.search(r"(SECRET|KEY|PASSWORD|TOKEN)(S)?$", e["name"]) and e["value"]:
                problem(f"{where}: {e['name']} is a literal; secrets come from Secrets")
    for kind in ("Service", "ServiceAccount", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
        if not of_kind(docs, kind, service):
            problem(f"{where}: no {kind}")
    for secret_doc in (d for d in docs if d and d.get("kind") == "Secret"):
        problem(f"k8s/{overlay}: a Secret {secret_doc['metadata']['name']} is committed")
    policies = [
        d
        for d in docs
        if d
        and d.get("kind") == "NetworkPolicy"
        and all(labels.get(k) == v for k, v in d["spec"]["podSelector"].get("matchLabels", {}).items())
        and d["spec"]["podSelector"].get("matchLabels")
    ]
    if not policies:
        problem(f"{where}: no NetworkPolicy selects it")
    for policy in policies:
        types = set(policy["spec"].get("policyTypes", []))
        if types != {"Ingress", "Egress"}:
            problem(f"{where}: the NetworkPolicy must restrict both ingress and egress")
        for rule in policy["spec"].get("ingress", []):
            if not rule.get("from") and service != "gateway":
                problem(f"{where}: ingress open to every pod")
        for rule in policy["spec"].get("egress", []):
            if not rule.get("to") and not all(p.get("port") == 53 for p in rule.get("ports", [])):
                problem(f"{where}: egress open to everything")


# A value that carries a credential: a URL with a password, a PEM block, a JWK's private part.
CREDENTIAL = re.compile(r"://[^/@\s:]+:[^/@\s]+@|-----BEGIN|\"d\"\s*:")


def check_config_map(where, config_map, secret):
    """A ConfigMap holds no variable that can carry a credential, and nothing that looks like one."""
    for name, value in (config_map.get("data") or {}).items():
        if name in secret:
            problem(f"{where}: the ConfigMap sets {name}, which can carry a credential: use a Secret and {name}_FILE")
        elif CREDENTIAL.search(str(value)) or re.search(r"(SECRET|PASSWORD|TOKEN|_KEY|_KEYS)$", name):
            problem(f"{where}: the ConfigMap's {name} looks like a credential")


# The fields of the edge's custom resources that examreg uses (cert-manager.io/v1 Certificate,
# gateway.networking.k8s.io/v1 HTTPRoute): kubernetes-validate has no schema for them, so
# anything else is a typo or needs adding here after checking the CRD.
EDGE_FIELDS = {
    "Certificate.spec": {
        "secretName", "dnsNames", "issuerRef", "privateKey", "duration", "renewBefore",
        "commonName", "usages", "isCA",
    },
    "Certificate.issuerRef": {"kind", "name", "group"},
    "Issuer.spec": {"ca", "selfSigned"},
    "Issuer.ca": {"secretName"},
    "Certificate.privateKey": {"algorithm", "size", "rotationPolicy", "encoding"},
    "HTTPRoute.spec": {"parentRefs", "hostnames", "rules"},
    "HTTPRoute.parentRef": {"name", "namespace", "sectionName", "kind", "group", "port"},
    "HTTPRoute.rule": {"matches", "backendRefs", "timeouts", "filters"},
    "HTTPRoute.backendRef": {"name", "port", "kind", "group", "namespace", "weight"},
    "HTTPRoute.timeouts": {"request", "backendRequest"},
}
# The edge is one proxy hop: the gateway trusts the last address it appends.
EDGE_HOPS = 1


def fields(where, value, key):
    extra = set(value or {}) - EDGE_FIELDS[key]
    if extra:
        problem(f"{where}: unknown fields {sorted(extra)}")


def seconds(duration):
    match = re.fullmatch(r"(\d+)(ms|s|m|h)", duration or "")
    if not match:
        return 0
    return int(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def check_edge(rendered):
    """The edge reaches the gateway's applicants' port only, over TLS for the certificate's
    host, with HSTS and a timeout that lets a slow phone send a photo; the prod overlay uses it
    and trusts exactly its one hop."""
    edge = ROOT / "k8s/components/edge"
    docs = {}
    for name in ("certificate.yaml", "httproute.yaml", "ingress.yaml"):
        for doc in yaml.safe_load_all((edge / name).read_text()):
            if doc:
                docs[doc["kind"]] = doc
    certificate, route, ingress = docs.get("Certificate"), docs.get("HTTPRoute"), docs.get("Ingress")
    if not (certificate and route and ingress):
        problem("k8s/components/edge: a Certificate, an HTTPRoute and an Ingress")
        return
    spec = certificate["spec"]
    fields("Certificate", spec, "Certificate.spec")
    fields("Certificate issuerRef", spec.get("issuerRef"), "Certificate.issuerRef")
    fields("Certificate privateKey", spec.get("privateKey"), "Certificate.privateKey")
    hosts, secret = set(spec.get("dnsNames", [])), spec.get("secretName")
    if not hosts or not secret or not spec.get("issuerRef", {}).get("name"):
        problem("Certificate: dnsNames, secretName and issuerRef are required")
    spec = route["spec"]
    fields("HTTPRoute", spec, "HTTPRoute.spec")
    for ref in spec.get("parentRefs", []):
        fields("HTTPRoute parentRef", ref, "HTTPRoute.parentRef")
    if set(spec.get("hostnames", [])) != hosts:
        problem("HTTPRoute: its hostnames are not the certificate's")
    for i, rule in enumerate(spec.get("rules", [])):
        where = f"HTTPRoute rule {i}"
        fields(where, rule, "HTTPRoute.rule")
        fields(f"{where} timeouts", rule.get("timeouts"), "HTTPRoute.timeouts")
        for backend in rule.get("backendRefs", []):
            fields(f"{where} backendRef", backend, "HTTPRoute.backendRef")
            if (backend.get("name"), backend.get("port")) != ("gateway", 8080):
                problem(f"{where}: routes to {backend.get('name')}:{backend.get('port')}, not the applicants' port gateway:8080")
        if seconds(rule.get("timeouts", {}).get("request")) < 60:
            problem(f"{where}: a request timeout under 60 s cuts a slow phone's photo")
        headers = [
            h
            for f in rule.get("filters", [])
            if f.get("type") == "ResponseHeaderModifier"
            for h in f.get("responseHeaderModifier", {}).get("set", [])
        ]
        hsts = next((h["value"] for h in headers if h["name"].lower() == "strict-transport-security"), "")
        age = re.search(r"max-age=(\d+)", hsts)
        if not age or int(age.group(1)) < 31536000:
            problem(f"{where}: no HSTS of a year or more")
    spec = ingress["spec"]
    tls_hosts = {h for t in spec.get("tls", []) for h in t.get("hosts", [])}
    if tls_hosts != hosts or {t.get("secretName") for t in spec.get("tls", [])} != {secret}:
        problem("Ingress: its TLS is not the certificate's hosts and Secret")
    for rule in spec.get("rules", []):
        for path in rule.get("http", {}).get("paths", []):
            service = path.get("backend", {}).get("service", {})
            if (service.get("name"), service.get("port", {}).get("number")) != ("gateway", 8080):
                problem("Ingress: routes elsewhere than the applicants' port gateway:8080")
    result = subprocess.run(
        ["kubernetes-validate", "--strict", "--quiet", str(edge / "ingress.yaml")],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        problem(f"k8s/components/edge/ingress.yaml does not validate:\n{result.stdout}{result.stderr}")
    prod = rendered.get("prod", [])
    if not any(d and d.get("kind") == "HTTPRoute" for d in prod):
        problem("the prod overlay does not add the edge component")
    for d in prod:
        if d and d.get("kind") == "ConfigMap" and d["metadata"]["name"] == "gateway-config":
            if d["data"].get("GATEWAY_TRUSTED_PROXIES") != str(EDGE_HOPS):
                problem(f"k8s/prod: GATEWAY_TRUSTED_PROXIES is not {EDGE_HOPS} (the edge's one hop)")


def check_client_scopes():
    """docs/internal-api.md's table of the suite's own clients is what the local stack gives
    them (deploy/lib.sh), so a production client list written from the table works."""
    lib = (ROOT / "deploy/lib.sh").read_text()
    listed = re.search(r'identity_service_clients\.json" <<JSON\n(.*?)\nJSON', lib, re.S)
    clients = {
        c["id"]: c["scopes"]
        for c in yaml.safe_load(re.sub(r'"\$\w+"', '""', listed.group(1)))
        if not c.get("staff")
    }
    docs = (ROOT / "docs/internal-api.md").read_text()
    table = {
        m.group(1): re.findall(r"`([a-z:]+)`", m.group(2))
        for m in re.finditer(r"^\| `(\w+)` \| (.*) \|$", docs, re.M)
        if m.group(1) in SERVICES
    }
    for client, scopes in clients.items():
        if sorted(table.get(client, [])) != sorted(scopes):
            problem(f"docs/internal-api.md: the {client} client's scopes are not {scopes}")


def check_certificate(where, service, docs, container, pod):
    """In production each binary mounts, at the directory its EXAMREG_TLS_* files name, the
    Secret of a cert-manager Certificate for its Service's name and localhost (its own
    healthcheck), for server and client use."""
    mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
    volumes = {v["name"]: v.get("secret", {}).get("secretName") for v in pod.get("volumes", [])}
    secret = next((volumes[n] for n, path in mounts.items() if path == "/run/tls" and n in volumes), None)
    if not secret:
        problem(f"{where}: no certificate Secret mounted at /run/tls")
        return
    certificates = [d for d in docs if d and d.get("kind") == "Certificate" and d["spec"].get("secretName") == secret]
    if len(certificates) != 1:
        problem(f"{where}: no one cert-manager Certificate makes the Secret {secret}")
        return
    spec = certificates[0]["spec"]
    fields(f"{where} Certificate", spec, "Certificate.spec")
    fields(f"{where} Certificate issuerRef", spec.get("issuerRef"), "Certificate.issuerRef")
    fields(f"{where} Certificate privateKey", spec.get("privateKey"), "Certificate.privateKey")
    if not {service, "localhost"} <= set(spec.get("dnsNames", [])):
        problem(f"{where}: the certificate does not name {service} and localhost")
    if not {"server auth", "client auth"} <= set(spec.get("usages", [])):
        problem(f"{where}: the certificate is not for server and client auth")
    issuer = spec.get("issuerRef", {})
    issuers = [
        d
        for d in docs
        if d and d.get("kind") == issuer.get("kind") and d["metadata"]["name"] == issuer.get("name")
    ]
    if not issuers:
        problem(f"{where}: the certificate's issuer {issuer.get('kind')}/{issuer.get('name')} is not in the overlay")
    for doc in issuers:
        fields(f"{where} {doc['kind']} {doc['metadata']['name']}", doc.get("spec"), "Issuer.spec")
        fields(f"{where} {doc['kind']} {doc['metadata']['name']} ca", doc["spec"].get("ca"), "Issuer.ca")


def check_production(where, service, values):
    """The prod overlay runs the binaries in production (where they refuse the local stack's
    defaults themselves) and sets what production must, with no local stack's value."""
    if values.get("EXAMREG_ENVIRONMENT") != "production":
        problem(f"{where}: production must set EXAMREG_ENVIRONMENT=production")
    # Mutual TLS between the binaries (k8s/components/tls): every service URL is https://,
    # every binary has its certificate and the CA, every service asks its callers for theirs.
    for name, value in values.items():
        if name in SERVICE_URLS and not str(value).startswith("https://"):
            problem(f"{where}: {name} is not https:// ({value})")
    wanted = {"EXAMREG_TLS_CERT_FILE", "EXAMREG_TLS_KEY_FILE", "EXAMREG_TLS_CA_FILE"}
    if service != "gateway":
        wanted.add("EXAMREG_TLS_CLIENT_CA_FILE")
    for name in sorted(wanted - {n for n, v in values.items() if v}):
        problem(f"{where}: production must set {name} (TLS between the binaries)")
    for name in PRODUCTION.get(service, ()):
        value = values.get(name)
        if not value:
            problem(f"{where}: production must set {name} (the code's default is the local stack's)")
        elif LOCAL_VALUE.search(value):
            problem(f"{where}: {name} is a local stack's value ({value})")
        elif name.endswith("_VALID_UNTIL") and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            problem(f"{where}: {name} is not a date (YYYY-MM-DD)")


if __name__ == "__main__":
    main()
