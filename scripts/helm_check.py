"""The chart check behind `make helm-check` (run by scripts/helm-check.sh inside its venv).

1. `helm lint --strict` of helm/sankalpa for every scenario below, through Helm's own Go code
   (helm-python-sdk binds libhelm_c, a C ABI over Helm v4's SDK; no helm binary, no re-implementation).
2. `helm template` of each scenario with the same code.
3. Every rendered manifest validated against the Kubernetes OpenAPI schemas shipped offline by
   kubernetes-validate (strict: unknown fields are errors), for the oldest Kubernetes the chart
   supports and the newest the package ships. ServiceMonitor is a CRD with no schema there: it gets
   a structural check instead, and the summary says so.
4. Consistency checks Helm cannot see: selectors match pod labels, named ports exist, every
   in-cluster URL points at a rendered Service (the headless one when the clients balance, the
   ClusterIP one under a mesh), every key read from a rendered Secret is in it, the catalog
   ConfigMap holds the repository's catalog byte for byte.
5. A policy check in the spirit of kube-linter (a Go binary, so not used here), on every pod the
   chart renders: see POLICY below. A finding fails the check unless the object carries the
   annotation `sankalpa.io/policy-exception-<check>` with the reason (the template puts it there
   next to what it waives; none does today); the summary
   lists each exception and its reason.
6. values.schema.json refuses what it must: each of MISSPELLED fails lint, the schema check and
   rendering, so a typo in a value cannot pass silently.

Exit status 0 only when everything passes. Needs no network.
"""

from __future__ import annotations

import copy
import json
import pathlib
import sys
import time
import warnings

import helm_python as helm
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "sankalpa"
RELEASE = "sankalpa"
NAMESPACE = "sankalpa"
MIN_KUBE = "1.30.0"  # Chart.yaml kubeVersion

SCENARIOS = {
    "default": {},
    "production": yaml.safe_load((CHART / "values-production.yaml").read_text()),
    "dev": {
        "dev": {"enabled": True},
        "networkPolicy": {"enabled": True},
        "marketplace": {"enabled": True},
        # production balances on the client (headless); this one covers the mesh's URLs
        "grpc": {"serviceMesh": "linkerd"},
        "ingress": {"enabled": True, "hosts": [{"host": "sankalpa.local"}]},
    },
}

# Values that are wrong in a way an operator could type: each must be refused by the schema.
MISSPELLED = {
    "an unknown top-level key": {"gatway": {"replicas": 3}},
    "an unknown service value": {"gateway": {"replcas": 3}},
    "an unknown nested value": {"objectStore": {"s3": {"regoin": "eu-west-1"}}},
    "a value of the wrong type": {"memory": {"replicas": "two"}},
    "a value outside its choices": {"grpc": {"serviceMesh": "linkrd"}},
    "an object store URL of no known kind": {"objectStore": {"url": "gs://bucket/objects"}},
}

POD_KINDS = ("Deployment", "StatefulSet", "Job", "Pod")
# Checks on every container, and the exception annotation that waives one.
POLICY = {
    "run-as-non-root": "runAsNonRoot (pod or container)",
    "read-only-root-fs": "readOnlyRootFilesystem",
    "no-privilege-escalation": "allowPrivilegeEscalation: false, not privileged",
    "drop-all-capabilities": "capabilities.drop [ALL], none added",
    "seccomp-runtime-default": "seccompProfile RuntimeDefault",
    "resources": "cpu and memory requests, a memory limit",
    "probes": "liveness and readiness probes (long-running workloads)",
    "pinned-image": "an image tag that is not latest",
    "no-host-access": "no hostNetwork, hostPID, hostIPC or hostPath volume",
    "no-service-account-token": "automountServiceAccountToken: false",
    "pdb": "a PodDisruptionBudget for a workload of more than one replica",
}
EXCEPTION_ANNOTATION = "sankalpa.io/policy-exception-"

failures: list[str] = []
exceptions: list[str] = []


def fail(scenario: str, message: str) -> None:
    failures.append(f"[{scenario}] {message}")


def kube_versions() -> list[str]:
    shipped = kubernetes_validate.utils.all_versions()
    newest = max(shipped, key=lambda v: tuple(int(x) for x in v.split(".")))
    return [MIN_KUBE, newest] if newest != MIN_KUBE else [MIN_KUBE]


def lint(scenario: str, values: dict) -> None:
    report = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE, kube_version=f"v{MIN_KUBE}")
    for message in report.get("messages", []):
        if message["severity"] >= 2:  # warnings count under --strict
            fail(scenario, f"helm lint: {message['path']}: {message['error']}")
    for error in report.get("errors", []) or []:
        fail(scenario, f"helm lint: {error}")


def render(scenario: str, values: dict) -> list[dict]:
    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(values)
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs = []
    for source, text in sorted(manifests.items()):
        if source.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc is None:
                continue
            if not isinstance(doc, dict) or "kind" not in doc:
                fail(scenario, f"{source}: a document that is not a Kubernetes object")
                continue
            doc["__source"] = source
            docs.append(doc)
    return docs


def check_servicemonitor(scenario: str, doc: dict) -> None:
    spec = doc.get("spec") or {}
    if doc.get("apiVersion") != "monitoring.coreos.com/v1":
        fail(scenario, f"ServiceMonitor {doc['metadata']['name']}: apiVersion")
    if not (spec.get("selector") or {}).get("matchLabels"):
        fail(scenario, f"ServiceMonitor {doc['metadata']['name']}: no selector.matchLabels")
    for endpoint in spec.get("endpoints") or [{}]:
        if not endpoint.get("port") or not str(endpoint.get("path", "")).startswith("/"):
            fail(scenario, f"ServiceMonitor {doc['metadata']['name']}: endpoint needs port and path")


def validate(scenario: str, docs: list[dict], versions: list[str]) -> dict[str, int]:
    counts = {"validated": 0, "structural": 0}
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']} ({doc['__source']})"
        body = {k: v for k, v in doc.items() if k != "__source"}
        if doc["kind"] == "ServiceMonitor":
            check_servicemonitor(scenario, body)
            counts["structural"] += 1
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(body, version, strict=True)
            except kubernetes_validate.ValidationError as err:
                path = "/".join(str(p) for p in err.path)
                fail(scenario, f"{name}: k8s {version}: {path}: {err.message}")
            except kubernetes_validate.SchemaNotFoundError as err:
                fail(scenario, f"{name}: no schema in k8s {version}: {err}")
        counts["validated"] += 1
    return counts


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def matches(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def pod_template(doc: dict) -> tuple[dict, dict]:
    """The labels and pod spec of a workload (a Pod is its own template)."""
    if doc["kind"] == "Pod":
        return doc["metadata"].get("labels") or {}, doc["spec"]
    template = doc["spec"]["template"]
    return template["metadata"].get("labels") or {}, template["spec"]


def workloads(docs: list[dict]) -> dict[str, dict]:
    return {f"{d['kind']} {d['metadata']['name']}": d for d in docs if d["kind"] in POD_KINDS}


def balancing(values: dict) -> str:
    """What the services' peer URLs must point at for these values: headless or clusterip."""
    grpc = values.get("grpc") or {}
    headless = grpc.get("headless", True)
    return "headless" if headless and grpc.get("serviceMesh", "none") == "none" else "clusterip"


def consistency(scenario: str, docs: list[dict], values: dict) -> None:
    services = by_kind(docs, "Service")
    secrets = {name: set((d.get("stringData") or {}) | (d.get("data") or {})) for name, d in by_kind(docs, "Secret").items()}
    accounts = by_kind(docs, "ServiceAccount")
    peers = balancing(values)
    pod_ports = {}
    for name, doc in workloads(docs).items():
        labels, spec = pod_template(doc)
        if doc["kind"] in ("Deployment", "StatefulSet") and not matches(doc["spec"]["selector"]["matchLabels"], labels):
            fail(scenario, f"{name}: selector does not match its pod labels")
        service_pod = doc["kind"] == "Deployment" and "-dev-" not in name
        ports = set()
        volumes = {v["name"] for v in spec.get("volumes", [])}
        claims = {c["metadata"]["name"] for c in doc["spec"].get("volumeClaimTemplates", [])}
        for c in spec["containers"]:
            if service_pod:
                for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                    got = ((c.get(probe) or {}).get("httpGet") or {}).get("path")
                    if got != path:
                        fail(scenario, f"{name}: {probe} is {got}, wanted {path}")
            ports |= {p.get("name") for p in c.get("ports", [])}
            for m in c.get("volumeMounts", []):
                if m["name"] not in volumes | claims:
                    fail(scenario, f"{name}: mount {m['name']} has no volume")
            for env in c.get("env", []):
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref and ref["name"] in secrets and ref["key"] not in secrets[ref["name"]]:
                    fail(scenario, f"{name}: {env['name']} reads key {ref['key']} missing from Secret {ref['name']}")
                value = env.get("value") or ""
                if env["name"].endswith("_URL") and value.startswith("http://") and f"{RELEASE}-" in value:
                    host = value.split("//", 1)[1].split(":", 1)[0]
                    target = services.get(host)
                    if target is None:
                        fail(scenario, f"{name}: {env['name']} points at missing Service {host}")
                    elif service_pod:
                        headless = target["spec"].get("clusterIP") == "None"
                        if headless != (peers == "headless"):
                            fail(scenario, f"{name}: {env['name']} points at {host}, wanted the {peers} Service")
        pod_ports[name] = (labels, ports)
        sa = spec.get("serviceAccountName")
        if service_pod and sa not in accounts:
            fail(scenario, f"{name}: ServiceAccount {sa} is not rendered")

    def pods_for(selector: dict) -> list[tuple[dict, set]]:
        return [lp for lp in pod_ports.values() if matches(selector, lp[0])]

    for name, svc in services.items():
        targets = pods_for(svc["spec"]["selector"])
        if not targets:
            fail(scenario, f"Service {name}: selects no pod")
        for port in svc["spec"]["ports"]:
            tp = port.get("targetPort")
            if isinstance(tp, str) and any(tp not in ports for _, ports in targets):
                fail(scenario, f"Service {name}: targetPort {tp} not on its pods")
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        for name, doc in by_kind(docs, kind).items():
            sel = doc["spec"]["selector" if kind == "PodDisruptionBudget" else "podSelector"]["matchLabels"]
            targets = pods_for(sel)
            if not targets:
                fail(scenario, f"{kind} {name}: selects no pod")
            if kind == "NetworkPolicy":
                for rule in doc["spec"].get("ingress", []):
                    for port in rule.get("ports", []):
                        if isinstance(port["port"], str) and any(port["port"] not in p for _, p in targets):
                            fail(scenario, f"NetworkPolicy {name}: port {port['port']} not on its pods")
                    for peer in rule.get("from", []):
                        ps = (peer.get("podSelector") or {}).get("matchLabels")
                        if ps and "namespaceSelector" not in peer and not pods_for(ps):
                            fail(scenario, f"NetworkPolicy {name}: a peer selects no pod")
    deployments = by_kind(docs, "Deployment")
    for name, hpa in by_kind(docs, "HorizontalPodAutoscaler").items():
        ref = hpa["spec"]["scaleTargetRef"]["name"]
        if ref not in deployments:
            fail(scenario, f"HPA {name}: target {ref} missing")
        elif "replicas" in deployments[ref]["spec"]:
            fail(scenario, f"HPA {name}: Deployment {ref} also sets replicas")
    for name, sm in by_kind(docs, "ServiceMonitor").items():
        sel = sm["spec"]["selector"]
        absent = [e["key"] for e in sel.get("matchExpressions", []) if e["operator"] == "DoesNotExist"]
        svcs = [s for s in services.values() if matches(sel["matchLabels"], s["metadata"]["labels"])
                and not any(k in s["metadata"]["labels"] for k in absent)]
        if not svcs:
            fail(scenario, f"ServiceMonitor {name}: selects no Service")
        for s in svcs:
            if "http" not in {p["name"] for p in s["spec"]["ports"]}:
                fail(scenario, f"ServiceMonitor {name}: Service {s['metadata']['name']} has no port http")
    for name, ing in by_kind(docs, "Ingress").items():
        for rule in ing["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                if path["backend"]["service"]["name"] not in services:
                    fail(scenario, f"Ingress {name}: backend Service missing")
    catalogs = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-catalog")]
    for cm in catalogs:
        want = {"agents.json": (ROOT / "catalog" / "agents.json").read_text()}
        for f in sorted((ROOT / "catalog" / "chains").glob("*.json")):
            want[f"chain.{f.name}"] = f.read_text()
        got = cm.get("data", {})
        for key, text in want.items():
            if got.get(key, "").strip() != text.strip():
                fail(scenario, f"ConfigMap {cm['metadata']['name']}: {key} differs from catalog/")
        if set(got) != set(want):
            fail(scenario, f"ConfigMap {cm['metadata']['name']}: keys {sorted(set(got) ^ set(want))}")
        try:
            json.loads(got.get("agents.json", "null"))
        except ValueError as err:
            fail(scenario, f"catalog agents.json is not JSON: {err}")


def policy(scenario: str, docs: list[dict]) -> int:
    """The POLICY checks; returns how many findings were waived by an exception annotation."""
    waived = 0
    budgets = [d["spec"]["selector"]["matchLabels"] for d in docs if d["kind"] == "PodDisruptionBudget"]
    for name, doc in workloads(docs).items():
        found: list[tuple[str, str]] = []
        labels, spec = pod_template(doc)
        long_running = doc["kind"] in ("Deployment", "StatefulSet")
        psc = spec.get("securityContext") or {}
        if spec.get("automountServiceAccountToken") is not False:
            found.append(("no-service-account-token", "the pod mounts a ServiceAccount token"))
        if any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")) or any(
                "hostPath" in v for v in spec.get("volumes", [])):
            found.append(("no-host-access", "the pod uses the host's namespaces or paths"))
        init = {c["name"] for c in spec.get("initContainers", [])}
        for c in spec.get("initContainers", []) + spec["containers"]:
            sc = c.get("securityContext") or {}
            where = f"container {c['name']}"
            if not sc.get("runAsNonRoot", psc.get("runAsNonRoot")) or sc.get("runAsUser", psc.get("runAsUser")) == 0:
                found.append(("run-as-non-root", where))
            if sc.get("readOnlyRootFilesystem") is not True:
                found.append(("read-only-root-fs", where))
            if sc.get("allowPrivilegeEscalation") is not False or sc.get("privileged"):
                found.append(("no-privilege-escalation", where))
            caps = sc.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []) or caps.get("add"):
                found.append(("drop-all-capabilities", where))
            seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
            if seccomp != "RuntimeDefault":
                found.append(("seccomp-runtime-default", where))
            res = c.get("resources") or {}
            requests, limits = res.get("requests") or {}, res.get("limits") or {}
            if not ({"cpu", "memory"} <= set(requests) and "memory" in limits):
                found.append(("resources", where))
            # Init containers run to completion and may not have probes.
            if long_running and c["name"] not in init and not (c.get("livenessProbe") and c.get("readinessProbe")):
                found.append(("probes", where))
            image = c.get("image", "")
            tag = image.rsplit("/", 1)[-1].partition(":")[2] if "@" not in image else "digest"
            if not tag or tag == "latest":
                found.append(("pinned-image", f"{where}: {image}"))
        replicas = doc["spec"].get("replicas", 1) if long_running else 1
        hpa = any(h["spec"]["scaleTargetRef"]["name"] == doc["metadata"]["name"]
                  for h in by_kind(docs, "HorizontalPodAutoscaler").values())
        if (replicas > 1 or hpa) and not any(matches(sel, labels) for sel in budgets):
            found.append(("pdb", "replicated without a PodDisruptionBudget"))
        annotations = doc["metadata"].get("annotations") or {}
        for check, detail in found:
            reason = annotations.get(EXCEPTION_ANNOTATION + check)
            if reason:
                waived += 1
                exceptions.append(f"[{scenario}] {name}: {check} ({detail}): {reason}")
            else:
                fail(scenario, f"policy {check}: {name}: {detail} (wanted {POLICY[check]})")
    return waived


# One break of each POLICY check, made on a copy of a rendered Deployment: the policy check must
# report exactly that check, and waive it when the exception annotation gives a reason.
def _pod(d): return d["spec"]["template"]["spec"]
def _container(d): return _pod(d)["containers"][0]
BREAKS = {
    "run-as-non-root": lambda d: _pod(d)["securityContext"].update(runAsNonRoot=False),
    "read-only-root-fs": lambda d: _container(d)["securityContext"].update(readOnlyRootFilesystem=False),
    "no-privilege-escalation": lambda d: _container(d)["securityContext"].update(allowPrivilegeEscalation=True),
    "drop-all-capabilities": lambda d: _container(d)["securityContext"]["capabilities"].update(add=["NET_RAW"]),
    "seccomp-runtime-default": lambda d: _pod(d)["securityContext"].pop("seccompProfile"),
    "resources": lambda d: _container(d)["resources"].pop("limits"),
    "probes": lambda d: _container(d).pop("livenessProbe"),
    "pinned-image": lambda d: _container(d).update(image=_container(d)["image"].rsplit(":", 1)[0] + ":latest"),
    "no-host-access": lambda d: _pod(d).update(hostNetwork=True),
    "no-service-account-token": lambda d: _pod(d).pop("automountServiceAccountToken"),
    "pdb": None,  # the Deployment's PodDisruptionBudget left out instead
}


def policy_catches_each_break(docs: list[dict]) -> None:
    target = next((d for d in docs if d["kind"] == "Deployment" and d["spec"].get("replicas", 1) > 1), None)
    if target is None:
        fail("policy", "no replicated Deployment in the default values to break")
        return
    name = target["metadata"]["name"]

    def findings(objects: list[dict]) -> tuple[set[str], int]:
        """The broken Deployment's findings (the others are the scenarios' business)."""
        before, seen = len(failures), len(exceptions)
        waived = policy("policy-probe", objects)
        found = {f for f in failures[before:] if f": Deployment {name}:" in f}
        del failures[before:]
        del exceptions[seen:]
        return found, waived

    others = [d for d in docs if d is not target]
    baseline, _ = findings([target, *others])
    for check, breaks in BREAKS.items():
        broken = copy.deepcopy(target)
        rest = others
        if breaks is None:
            rest = [d for d in others if not (d["kind"] == "PodDisruptionBudget" and d["metadata"]["name"] == name)]
        else:
            breaks(broken)
        found, _ = findings([broken, *rest])
        new = sorted(found - baseline)
        if len(new) != 1 or not new[0].startswith(f"[policy-probe] policy {check}:"):
            fail("policy", f"breaking {check} gives {new or 'no finding'}")
        broken["metadata"].setdefault("annotations", {})[EXCEPTION_ANNOTATION + check] = "a reason"
        found, waived = findings([broken, *rest])
        if found - baseline or waived != 1:
            fail("policy", f"the exception annotation does not waive {check}: {sorted(found - baseline)}")


# Helm's longest release name: every name and label the chart derives from it must still fit.
LONG_RELEASE = "r" * 53


def names_fit() -> None:
    """Service names are DNS labels (63), a StatefulSet's name gets a 10-character revision hash
    in a 63-character label (52), label values are 63 at most."""
    values = {"dev": {"enabled": True}}
    with helm.Chart.load(str(CHART)) as chart:
        manifests = chart.render(values, name=LONG_RELEASE, namespace=NAMESPACE, is_install=True)
    limits = {"Service": 63, "StatefulSet": 52}
    for source, text in sorted(manifests.items()):
        if source.endswith("NOTES.txt"):
            continue
        for doc in filter(None, yaml.safe_load_all(text)):
            name = doc["metadata"]["name"]
            if len(name) > limits.get(doc["kind"], 253):
                fail("names", f"{doc['kind']} {name}: {len(name)} characters, over {limits.get(doc['kind'], 253)}")
            labels = dict(doc["metadata"].get("labels") or {})
            if doc["kind"] in POD_KINDS and doc["kind"] != "Pod":
                labels |= doc["spec"]["template"]["metadata"].get("labels") or {}
            for key, value in labels.items():
                if len(str(value)) > 63:
                    fail("names", f"{doc['kind']} {name}: label {key} is over 63 characters")


def schema_refuses_misspellings() -> None:
    with helm.Chart.load(str(CHART)) as chart:
        for what, values in MISSPELLED.items():
            report = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE, kube_version=f"v{MIN_KUBE}")
            if not any(m["severity"] >= 2 for m in report.get("messages", [])):
                fail("schema", f"helm lint accepts {what}: {values}")
            for step in ("validate_schema", "render"):
                try:
                    if step == "render":
                        chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
                    else:
                        chart.validate_schema(values)
                except helm.HelmError:
                    continue
                fail("schema", f"{step} accepts {what}: {values}")


def main() -> int:
    warnings.simplefilter("ignore")
    started = time.monotonic()
    versions = kube_versions()
    print(f"helm-check: Helm SDK {helm.helm_sdk_version()} (helm-python-sdk, libhelm_c {helm.helm_c_version()}); "
          f"schemas: Kubernetes {', '.join(versions)} (kubernetes-validate {kubernetes_validate.version.__version__})")
    default_docs: list[dict] = []
    for scenario, values in SCENARIOS.items():
        before = len(failures)
        lint(scenario, values)
        try:
            docs = render(scenario, values)
        except helm.HelmError as err:
            fail(scenario, f"helm template: {err}")
            print(f"helm-check: {scenario}: FAILED to render")
            continue
        if scenario == "default":
            default_docs = docs
        counts = validate(scenario, docs, versions)
        consistency(scenario, docs, values)
        policy_before = len(failures)
        waived = policy(scenario, docs)
        findings = len(failures) - policy_before + waived
        kinds: dict[str, int] = {}
        for d in docs:
            kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
        status = "ok" if len(failures) == before else f"{len(failures) - before} problem(s)"
        print(f"helm-check: {scenario}: lint, template, {counts['validated']} manifests schema-valid"
              + (f", {counts['structural']} ServiceMonitor(s) checked structurally (CRD: no schema offline)" if counts["structural"] else "")
              + f", policy {len(POLICY)} checks on {len(workloads(docs))} workloads"
              + f" ({findings} finding(s), {waived} waived by an exception)"
              + f": {status}")
        print("             " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
    before = len(failures)
    policy_catches_each_break(default_docs)
    print(f"helm-check: policy: each of the {len(BREAKS)} checks reports its break and honours its exception: "
          + ("ok" if len(failures) == before else f"{len(failures) - before} problem(s)"))
    before = len(failures)
    names_fit()
    print(f"helm-check: names: a {len(LONG_RELEASE)}-character release's names and labels fit: "
          + ("ok" if len(failures) == before else f"{len(failures) - before} problem(s)"))
    before = len(failures)
    schema_refuses_misspellings()
    print(f"helm-check: schema: {len(MISSPELLED)} misspelled values refused by lint, schema and template: "
          + ("ok" if len(failures) == before else f"{len(failures) - before} problem(s)"))
    for e in exceptions:
        print(f"helm-check: policy exception {e}")
    for f in failures:
        print(f"helm-check: FAIL {f}", file=sys.stderr)
    print(f"helm-check: {'FAILED' if failures else 'passed'} in {time.monotonic() - started:.1f}s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
