"""Checks of the Helm chart's rendered manifests, called by deploy/check (which installs helm,
kubernetes-validate and starts the kube-apiserver first).

  check_manifests.py rbac RENDERED RBAC_YAML        the chart's ClusterRole rules == rbac.yaml's
  check_manifests.py split RENDERED CORE CRDS       core kinds -> CORE, CRD kinds -> CRDS
  check_manifests.py config RENDERED OUT            the agent's sluice.yaml from the ConfigMap
  check_manifests.py crds RENDERED                  structure of ServiceMonitor/PrometheusRule
  check_manifests.py dry-run RENDERED ENV_FILE      server-side apply, dryRun=All, strict fields
  check_manifests.py readme-args README             the --set arguments of its `helm install`
  check_manifests.py rules-file RENDERED OUT        the PrometheusRule's spec as a rules file
  check_manifests.py grafana-exprs JSON OUT         the dashboard's PromQL, variables substituted
  check_manifests.py alert-tests RULES TESTS        every alert has a firing and a silent test
"""

import json
import shlex
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request

import yaml

# Kinds the API server of the check knows, and their collection paths.
CORE = {
    "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts",
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
    "Service": "/api/v1/namespaces/{ns}/services",
    "DaemonSet": "/apis/apps/v1/namespaces/{ns}/daemonsets",
    "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
}
# prometheus-operator kinds: their CRDs are not installed on the check's API server.
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}


def docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def fail(msg):
    print(f"check_manifests: {msg}", file=sys.stderr)
    sys.exit(1)


def rbac(rendered, reference):
    ours = [d for d in docs(rendered) if d["kind"] == "ClusterRole"]
    theirs = [d for d in docs(reference) if d["kind"] == "ClusterRole"]
    if len(ours) != 1 or len(theirs) != 1:
        fail(f"expected one ClusterRole in each, got {len(ours)} rendered and {len(theirs)} in {reference}")
    a, b = ours[0].get("rules"), theirs[0].get("rules")
    if a != b:
        fail(
            "the chart's ClusterRole rules drifted from deploy/kubernetes/rbac.yaml:\n"
            f"  chart:    {json.dumps(a)}\n  rbac.yaml: {json.dumps(b)}\n"
            "change both (deploy/helm/sluice/templates/rbac.yaml) together"
        )
    kinds = {d["kind"] for d in docs(rendered)}
    for k in ("ServiceAccount", "ClusterRoleBinding"):
        if k not in kinds:
            fail(f"the chart renders no {k}")
    print(f"rbac: the chart's rules equal {reference}'s ({len(a)} rule(s))")


def split(rendered, core_out, crd_out):
    core, crds = [], []
    for d in docs(rendered):
        if d["kind"] in CORE:
            core.append(d)
        elif d["kind"] in CRD_KINDS:
            crds.append(d)
        else:
            fail(f"unexpected kind {d['kind']}: teach deploy/check_manifests.py about it")
    for path, ds in ((core_out, core), (crd_out, crds)):
        with open(path, "w") as f:
            yaml.safe_dump_all(ds, f, sort_keys=False)
    print(f"split: {len(core)} core object(s), {len(crds)} prometheus-operator object(s)")


def config(rendered, out):
    cms = [d for d in docs(rendered) if d["kind"] == "ConfigMap"]
    if len(cms) != 1 or "sluice.yaml" not in cms[0]["data"]:
        fail("expected one ConfigMap with a sluice.yaml key")
    with open(out, "w") as f:
        f.write(cms[0]["data"]["sluice.yaml"])


def crds(rendered):
    """Offline structure check of the prometheus-operator objects (their CRDs' required fields
    and the types the operator expects), since the API server of the check has no such CRDs."""
    seen = set()
    for d in docs(rendered):
        kind = d["kind"]
        if kind not in CRD_KINDS:
            continue
        seen.add(kind)
        if d.get("apiVersion") != "monitoring.coreos.com/v1":
            fail(f"{kind}: apiVersion {d.get('apiVersion')}")
        spec = d.get("spec") or fail(f"{kind}: no spec")
        if kind == "ServiceMonitor":
            allowed = {"selector", "namespaceSelector", "endpoints", "jobLabel"}
            extra = set(spec) - allowed
            extra and fail(f"ServiceMonitor: unknown spec fields {extra}")
            isinstance(spec["selector"].get("matchLabels"), dict) or fail("ServiceMonitor: selector.matchLabels")
            for ep in spec["endpoints"]:
                extra = set(ep) - {"port", "path", "interval", "scrapeTimeout", "relabelings", "scheme"}
                extra and fail(f"ServiceMonitor endpoint: unknown fields {extra}")
                for r in ep.get("relabelings", []):
                    set(r) <= {"sourceLabels", "targetLabel", "regex", "replacement", "action", "separator"} or fail(
                        f"ServiceMonitor relabeling: unknown fields in {r}"
                    )
        else:
            groups = spec.get("groups") or fail("PrometheusRule: no groups")
            for g in groups:
                set(g) <= {"name", "interval", "rules"} or fail(f"PrometheusRule group: unknown fields in {g}")
                for r in g["rules"]:
                    extra = set(r) - {"alert", "record", "expr", "for", "labels", "annotations"}
                    extra and fail(f"rule {r.get('alert')}: unknown fields {extra}")
                    ("alert" in r) != ("record" in r) or fail(f"rule needs alert xor record: {r}")
                    isinstance(r.get("expr"), str) and r["expr"].strip() or fail(f"rule {r.get('alert')}: no expr")
                    for k in ("labels", "annotations"):
                        all(isinstance(v, str) for v in (r.get(k) or {}).values()) or fail(
                            f"rule {r.get('alert')}: {k} must be strings"
                        )
                    if "for" in r and not isinstance(r["for"], str):
                        fail(f"rule {r.get('alert')}: for must be a duration string")
                    # An unbalanced template or selector would only show in Prometheus.
                    for ch_open, ch_close in ("()", "{}", "[]"):
                        if r["expr"].count(ch_open) != r["expr"].count(ch_close):
                            fail(f"rule {r.get('alert')}: unbalanced {ch_open}{ch_close} in expr")
    if seen != CRD_KINDS:
        fail(f"expected {sorted(CRD_KINDS)} rendered, got {sorted(seen)}")
    print(f"crds: {', '.join(sorted(seen))} well-formed (offline: their CRDs are not on the check's API server)")


def dry_run(rendered, env_file):
    env = {}
    with open(env_file) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                env[k] = v
    ctx = ssl.create_default_context(cafile=env["KUBE_CA_FILE"])
    n = 0
    for d in docs(rendered):
        kind, name = d["kind"], d["metadata"]["name"]
        if kind in CRD_KINDS:
            print(f"dry-run: skipping {kind}/{name}: the check's API server has no prometheus-operator CRDs (checked offline)")
            continue
        ns = d["metadata"].get("namespace", "")
        path = CORE[kind].format(ns=ns) + "/" + urllib.parse.quote(name)
        query = "dryRun=All&fieldManager=deploy-check&fieldValidation=Strict&force=true"
        req = urllib.request.Request(
            f"{env['KUBE_URL']}{path}?{query}",
            data=json.dumps(d).encode(),
            method="PATCH",
            headers={
                "Authorization": f"Bearer {env['KUBE_ADMIN_TOKEN']}",
                # Server-side apply: creates (in dry run) or diffs against what exists.
                "Content-Type": "application/apply-patch+yaml",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
                body = json.load(resp)
                warnings = resp.headers.get_all("Warning") or []
        except urllib.error.HTTPError as e:
            fail(f"the API server refused {kind}/{name}: {e.code} {e.read().decode(errors='replace')}")
        if body.get("kind") != kind:
            fail(f"{kind}/{name}: unexpected answer {body.get('kind')}")
        if warnings:
            fail(f"{kind}/{name}: the API server warned: {warnings}")
        n += 1
        print(f"dry-run: {kind}/{name} accepted (server-side apply, dryRun=All, fieldValidation=Strict)")
    if n == 0:
        fail("nothing was sent to the API server")


def readme_args(readme):
    """Prints, one per line, the arguments after `helm install sluice deploy/helm/sluice` in the
    README's Deployment section, so deploy/check renders exactly what the README tells users."""
    text = open(readme).read()
    start = text.find("helm install sluice deploy/helm/sluice")
    if start < 0:
        fail(f"{readme} has no `helm install sluice deploy/helm/sluice` command")
    lines = []
    for line in text[start:].splitlines():
        lines.append(line.rstrip("\\").strip())
        if not line.rstrip().endswith("\\"):
            break
    args = shlex.split(" ".join(lines))[4:]
    if "--set" not in args:
        fail(f"no --set in the README's helm install: {args}")
    for a in args:
        print(a)


def rules_file(rendered, out):
    rules = [d for d in docs(rendered) if d["kind"] == "PrometheusRule"]
    if len(rules) != 1:
        fail(f"expected one PrometheusRule, got {len(rules)}")
    with open(out, "w") as f:
        yaml.safe_dump(rules[0]["spec"], f, sort_keys=False)


def alert_tests(rules_path, tests_path):
    """Every alert of the rules file is tested by `promtool test rules` both ways: at some
    evaluation it fires (exp_alerts not empty) and at another it stays silent (exp_alerts: []).
    An alert added to the chart without tests, or a test of an alert that no longer exists,
    fails here."""
    with open(rules_path) as f:
        rules = yaml.safe_load(f)
    with open(tests_path) as f:
        tests = yaml.safe_load(f)
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    fires, silent = set(), set()
    for t in tests["tests"]:
        for a in t.get("alert_rule_test", []):
            (fires if a.get("exp_alerts") else silent).add(a["alertname"])
    unknown = (fires | silent) - alerts
    if unknown:
        fail(f"{tests_path} tests alerts the chart does not have: {sorted(unknown)}")
    for what, seen in (("fire", fires), ("stay silent", silent)):
        missing = alerts - seen
        if missing:
            fail(f"{tests_path} has no case where these alerts {what}: {sorted(missing)}")
    print(f"alert tests: each of the {len(alerts)} alerts fires in one case and stays silent in another")


# Grafana's variables, replaced by values of the same kind so Prometheus's parser can judge.
GRAFANA_VARS = {"$__rate_interval": "5m", "$__range": "1h", "$__interval": "1m", "$node": ".*"}


def grafana_exprs(dashboard, out):
    with open(dashboard) as f:
        d = json.load(f)
    exprs = []
    for p in d["panels"]:
        for t in p.get("targets", []):
            e = t["expr"]
            for k, v in GRAFANA_VARS.items():
                e = e.replace(k, v)
            if "$" in e:
                fail(f"panel {p['title']!r}: unknown Grafana variable in {e}")
            exprs.append(" ".join(e.split()))
    for q in (v["query"] for v in d["templating"]["list"] if v["type"] == "query"):
        # label_values(METRIC, LABEL) is Grafana's, not PromQL: its metric is checked instead.
        exprs.append(q["query"].split("(", 1)[1].split(",", 1)[0].strip())
    with open(out, "w") as f:
        f.write("\n".join(exprs) + "\n")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"rbac": rbac, "split": split, "config": config, "crds": crds, "dry-run": dry_run, "readme-args": readme_args,
     "rules-file": rules_file, "grafana-exprs": grafana_exprs,
     "alert-tests": alert_tests}[cmd](*args)
