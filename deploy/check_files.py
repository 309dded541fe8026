"""The cross-file checks of deploy/check: that the deployment files agree with each other and
with the code (names, paths, ports, keys), which no linter or schema sees.

Run by deploy/check with its venv's Python (PyYAML, promql-parser); prints one line per check
and exits 1 if any failed. Run from the repository root.
"""

import glob
import json
import os
import re
import sys
import tomllib

import promql_parser
import yaml

failures = 0
passes = 0


def ok(msg):
    global passes
    passes += 1
    print(f"  ok: {msg}")


def fail(msg):
    global failures
    failures += 1
    print(f"  FAILED: {msg}")


def check(cond, msg, why=""):
    if cond:
        ok(msg)
    else:
        fail(msg + (f" ({why})" if why else ""))
    return cond


def section(title):
    print(f"\n-- {title}")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def yaml_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def subset(small, big):
    return all(big.get(k) == v for k, v in (small or {}).items())


def rust_sources():
    return sorted(glob.glob("src/**/*.rs", recursive=True))


SRC_TEXT = "\n".join(read(p) for p in rust_sources())


# ---------------------------------------------------------------------------------------------
def dockerfile():
    section("deploy/Dockerfile and .dockerignore against Cargo.toml and the sources")
    cargo = tomllib.loads(read("Cargo.toml"))
    pkg = cargo["package"]
    text = read("deploy/Dockerfile")

    # The dependency layer's stubs: one per target Cargo.toml declares.
    m = re.search(r"for bench in ([^;]+);", text)
    stub_benches = set(m.group(1).split()) if m else set()
    benches = {b["name"] for b in cargo.get("bench", []) if b.get("path", f"benches/{b['name']}.rs") == f"benches/{b['name']}.rs"}
    odd = [b["path"] for b in cargo.get("bench", []) if b.get("path", f"benches/{b['name']}.rs") != f"benches/{b['name']}.rs"]
    check(stub_benches == benches and not odd,
          f"the stub benches are Cargo.toml's [[bench]] targets ({', '.join(sorted(benches))})",
          f"Dockerfile stubs {sorted(stub_benches)}, Cargo.toml {sorted(benches)}, other paths {odd}")
    for t in cargo.get("test", []):
        path = t.get("path", f"tests/{t['name']}.rs")
        check(path in text, f"the stub test {path} ([[test]] {t['name']})")
    for target, default in (("lib", "src/lib.rs"), ("bin", "src/main.rs")):
        entries = cargo.get(target, {})
        for e in entries if isinstance(entries, list) else [entries]:
            path = e.get("path", default)
            check(path in text, f"the stub {target} {path}")

    labels = dict(re.findall(r'org\.opencontainers\.image\.(\w+)="([^"]*)"', text))
    check(labels.get("licenses") == pkg.get("license"),
          f"label licenses is Cargo.toml's license ({pkg.get('license')})", f"label says {labels.get('licenses')}")
    check(labels.get("description") == pkg.get("description"),
          "label description is Cargo.toml's description", f"label says {labels.get('description')!r}")

    # What the sources compile in must be in the build context and copied before the build.
    builder = text.split("\nFROM ")[1] if "\nFROM " in text else text
    copied = {c.rstrip("/") for c in re.findall(r"^COPY (?!--from)(\S+)", builder, re.M)}
    copied |= {c.rstrip("/") for line in re.findall(r"^COPY (?!--from)(.+) \S+$", builder, re.M) for c in line.split()}
    allowed = {l[1:].strip().rstrip("/") for l in read(".dockerignore").splitlines() if l.startswith("!")}
    needed = {}
    for path in rust_sources():
        lines = read(path).splitlines()
        cfg_test_at = next((i for i, l in enumerate(lines) if "#[cfg(test)]" in l), None)
        for i, line in enumerate(lines):
            for macro, arg in re.findall(r"(include_str|include_bytes|migrate)!\(\s*\"([^\"]+)\"", line):
                if macro == "migrate":
                    target = os.path.normpath(arg)
                else:
                    target = os.path.normpath(os.path.join(os.path.dirname(path), arg))
                top = target.split(os.sep)[0]
                if top == "tests":
                    check(cfg_test_at is not None and cfg_test_at < i,
                          f"{path}:{i + 1} compiles in {target} only in tests (not in the image)",
                          "tests/ is not in the image's build context")
                    continue
                needed.setdefault(top, []).append(f"{path}:{i + 1}")
    for top, where in sorted(needed.items()):
        check(top in copied and top in allowed,
              f"{top} (compiled in by {where[0]}{' and more' if len(where) > 1 else ''}) is let in by .dockerignore and copied",
              f"copied: {top in copied}, let in: {top in allowed}")
    for top in ("Cargo.toml", "Cargo.lock", "src"):
        check(top in copied and top in allowed, f"{top} is let in by .dockerignore and copied")
    patterns = [l.strip() for l in read(".dockerignore").splitlines() if l.strip() and not l.startswith("#")]
    check(patterns[:1] == ["*"], ".dockerignore leaves everything out but what it lets in (first pattern `*`)")
    for bad in ("target", ".git", "tests", "critic.toml", "*.pem", "*.db"):
        check(bad not in allowed, f".dockerignore keeps {bad} out")

    check(re.search(r'^HEALTHCHECK .*\n?.*CMD \["/usr/local/bin/critic", "health"\]', text, re.M) is not None,
          "HEALTHCHECK runs `critic health` (no curl in the image)")
    check('ENTRYPOINT ["/usr/local/bin/critic"]' in text and "COPY --from=builder /out/critic /usr/local/bin/critic" in text,
          "ENTRYPOINT is the binary the runtime stage copies")
    check(re.search(r"^USER 65532", text, re.M) is not None and "--chown=65532:65532" in text,
          "runs as nonroot (65532), which owns /var/lib/critic")
    check("CRITIC_STORE__URL" not in text and "ENV CRITIC_CONFIG" not in text,
          "the image sets neither CRITIC_STORE__URL nor CRITIC_CONFIG (a variable would beat a mounted file)")


# ---------------------------------------------------------------------------------------------
def settings_file(path):
    try:
        settings = tomllib.loads(read(path))
    except tomllib.TOMLDecodeError as e:
        fail(f"{path} is TOML: {e}")
        return {}
    ok(f"{path} is TOML")
    return settings


def file_settings(settings):
    """Every `*_file` setting, as (key, path)."""
    out = []

    def walk(prefix, table):
        for k, v in table.items():
            if isinstance(v, dict):
                walk(f"{prefix}{k}.", v)
            elif k.endswith("_file"):
                out.append((prefix + k, v))

    walk("", settings)
    return out


def compose():
    section("deploy/docker-compose.yml against deploy/compose/critic.toml")
    doc = yaml_docs("deploy/docker-compose.yml")[0]
    services = doc.get("services", {})
    critic = services.get("critic", {})
    env = critic.get("environment", {})
    config_path = env.get("CRITIC_CONFIG")
    mounts = {}
    for v in critic.get("volumes", []):
        parts = v.split(":")
        mounts[parts[1]] = os.path.normpath(os.path.join("deploy", parts[0]))
    source = mounts.get(config_path)
    if not check(source is not None and os.path.isfile(source),
                 f"CRITIC_CONFIG ({config_path}) is mounted from a file of the repository ({source})"):
        return
    settings = settings_file(source)
    granted = {s if isinstance(s, str) else s.get("source") for s in critic.get("secrets", [])}
    defined = doc.get("secrets", {})
    for key, path in file_settings(settings):
        name = path.removeprefix("/run/secrets/")
        check(path.startswith("/run/secrets/") and name in granted and name in defined,
              f"{key} = {path} is a compose secret the critic service gets")
    for name, spec in defined.items():
        f = os.path.normpath(os.path.join("deploy", spec.get("file", "")))
        check(f.startswith("deploy/compose/secrets/"), f"secret {name} is read from deploy/compose/secrets/ ({f})")
    check(read("deploy/compose/secrets/.gitignore").splitlines()[-2:] == ["*", "!.gitignore"],
          "deploy/compose/secrets/ is ignored by git but for its .gitignore")
    store = settings.get("store", {})
    check(str(store.get("url", "")).startswith("postgres://") and "CRITIC_STORE__URL" not in env,
          "compose's critic.toml names PostgreSQL in store.url (no variable overrides it)")
    check(":" not in store.get("url", "").removeprefix("postgres://").split("@")[0],
          "store.url carries no password (store.password_file does)")
    pg_env = services.get("postgres", {}).get("environment", {})
    pg_secrets = {s if isinstance(s, str) else s.get("source") for s in services.get("postgres", {}).get("secrets", [])}
    check(store.get("password_file") == pg_env.get("POSTGRES_PASSWORD_FILE") and "db-password" in pg_secrets
          and "POSTGRES_PASSWORD" not in pg_env,
          "Critic and PostgreSQL read the one password secret (store.password_file, POSTGRES_PASSWORD_FILE)")
    deps = critic.get("depends_on", {})
    check(deps.get("postgres", {}).get("condition") == "service_healthy" and "healthcheck" in services.get("postgres", {}),
          "critic waits until postgres is healthy (pg_isready)")
    pull = services.get("ollama-pull", {})
    model = settings.get("llm", {}).get("model")
    check(pull.get("profiles") == ["ollama"] and services.get("ollama", {}).get("profiles") == ["ollama"],
          "ollama and ollama-pull are in the profile `ollama` only")
    check(model in (pull.get("entrypoint") or []), f"ollama-pull pulls llm.model ({model})")
    check(deps.get("ollama-pull", {}).get("required") is False,
          "critic waits for ollama-pull only when the profile is on (required: false)")
    check(settings.get("llm", {}).get("base_url", "").startswith("http://ollama:11434/"),
          "llm.base_url names the ollama service")


# ---------------------------------------------------------------------------------------------
OPTIONAL_K8S = {
    "ingress.yaml": "optional: the public route to the webhook",
    "servicemonitor.yaml": "optional: needs the Prometheus Operator's CRD",
    "secret.example.yaml": "an example: the Secret is created by the operator",
}


def kubernetes():
    section("deploy/kubernetes: the kustomization and the manifests against each other")
    base = "deploy/kubernetes"
    kust_text = read(f"{base}/kustomization.yaml")
    kust = yaml.safe_load(kust_text)
    resources = kust.get("resources", [])
    for r in resources:
        check(os.path.isfile(f"{base}/{r}"), f"kustomization resource {r} exists")
    gens = kust.get("configMapGenerator", [])
    for g in gens:
        for f in g.get("files", []):
            check(os.path.isfile(f"{base}/{f.split('=')[-1]}"), f"configMapGenerator {g['name']} file {f} exists")
    present = {os.path.basename(p) for p in glob.glob(f"{base}/*.yaml") + glob.glob(f"{base}/*.yml")}
    present.discard("kustomization.yaml")
    for name in sorted(present - set(resources)):
        check(name in OPTIONAL_K8S and name in kust_text,
              f"{name} is not listed: {OPTIONAL_K8S.get(name, 'not listed nor known as optional')}, named in kustomization.yaml's comments")
    for name in OPTIONAL_K8S:
        check(name in present, f"the optional file {name} exists")

    objs = {}
    for name in present:
        for d in yaml_docs(f"{base}/{name}"):
            objs[(d.get("kind"), name)] = d

    def one(kind):
        found = [d for (k, _), d in objs.items() if k == kind]
        return found[0] if len(found) == 1 else None

    dep, svc, pdb, ing, sm, sec, sa = (one(k) for k in ("Deployment", "Service", "PodDisruptionBudget", "Ingress",
                                                         "ServiceMonitor", "Secret", "ServiceAccount"))
    if not check(all(x is not None for x in (dep, svc, pdb, ing, sm, sec, sa)),
                 "one Deployment, Service, PodDisruptionBudget, Ingress, ServiceMonitor, Secret and ServiceAccount"):
        return
    pod = dep["spec"]["template"]
    spec = pod["spec"]
    pod_labels = pod["metadata"]["labels"]
    c = spec["containers"][0]
    env = {e["name"]: e for e in c.get("env", [])}
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
    vols = {v["name"]: v for v in spec.get("volumes", [])}

    check(dep["spec"]["replicas"] >= 2, f"the Deployment runs {dep['spec']['replicas']} replicas")
    check(subset(dep["spec"]["selector"]["matchLabels"], pod_labels), "the Deployment's selector matches its pods")
    check(c["image"] in {i["name"] for i in kust.get("images", [])}, f"kustomization's images sets the image {c['image']}")
    # Settings: the generated ConfigMap at CRITIC_CONFIG, read from the file beside it.
    cfg_vol = next((n for n, v in vols.items() if "configMap" in v), None)
    gen_names = {g["name"] for g in gens}
    check(cfg_vol and vols[cfg_vol]["configMap"]["name"] in gen_names, "the config volume is the generated ConfigMap")
    gen_files = [f.split("=")[0] for g in gens for f in g.get("files", [])]
    config_path = env.get("CRITIC_CONFIG", {}).get("value")
    check(cfg_vol and config_path in {f"{mounts.get(cfg_vol)}/{f}" for f in gen_files},
          f"CRITIC_CONFIG ({config_path}) is the generated file where the ConfigMap is mounted")
    settings = settings_file(f"{base}/critic.toml")
    check("url" not in settings.get("store", {}), "critic.toml leaves store.url to CRITIC_STORE__URL (PostgreSQL)")
    # Secrets: the Secret's keys, as env and as files.
    secret_keys = set((sec.get("stringData") or {}).keys()) | set((sec.get("data") or {}).keys())
    ref = env.get("CRITIC_STORE__URL", {}).get("valueFrom", {}).get("secretKeyRef", {})
    check(ref.get("name") == sec["metadata"]["name"] and ref.get("key") in secret_keys,
          f"CRITIC_STORE__URL comes from the Secret {ref.get('name')}, key {ref.get('key')}")
    sec_vol = next((n for n, v in vols.items() if "secret" in v), None)
    check(sec_vol and vols[sec_vol]["secret"]["secretName"] == sec["metadata"]["name"],
          "the secrets volume is the Secret of secret.example.yaml")
    for key, path in file_settings(settings):
        d, f = os.path.split(path)
        check(sec_vol and d == mounts.get(sec_vol) and f in secret_keys,
              f"{key} = {path} is a key of the Secret where it is mounted")
    check(all(k in kust_text for k in secret_keys), "the commented secretGenerator names every key of the Secret")
    check(read(f"{base}/secrets/.gitignore").splitlines()[-2:] == ["*", "!.gitignore"],
          "deploy/kubernetes/secrets/ is ignored by git but for its .gitignore")
    # Probes, hardening.
    check(c["livenessProbe"]["httpGet"]["path"] == "/healthz", "liveness probe GET /healthz")
    check(c["readinessProbe"]["httpGet"]["path"] == "/readyz", "readiness probe GET /readyz")
    sc = c.get("securityContext", {})
    psc = spec.get("securityContext", {})
    check(sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
          and sc.get("capabilities", {}).get("drop") == ["ALL"] and psc.get("runAsNonRoot") is True
          and psc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
          "read-only root, no privilege escalation, no capabilities, non-root, RuntimeDefault seccomp")
    check(any(m == "/tmp" and "emptyDir" in vols.get(n, {}) for n, m in mounts.items()), "an emptyDir at /tmp")
    check("resources" in c and "requests" in c["resources"] and "limits" in c["resources"], "resource requests and limits")
    check(spec.get("serviceAccountName") == sa["metadata"]["name"] and sa.get("automountServiceAccountToken") is False,
          "the pods' ServiceAccount mounts no token")
    # Ports and the objects that name them.
    ann = pod["metadata"].get("annotations", {})
    check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/path") == "/metrics"
          and int(ann.get("prometheus.io/port", 0)) in ports.values(),
          f"prometheus.io annotations scrape /metrics on a container port ({ann.get('prometheus.io/port')})")
    check(subset(svc["spec"]["selector"], pod_labels), "the Service selects the pods")
    svc_ports = {p["name"]: p for p in svc["spec"]["ports"]}
    check(all(p["targetPort"] in ports or p["targetPort"] in ports.values() for p in svc_ports.values()),
          "the Service's target ports are container ports")
    check(subset(pdb["spec"]["selector"]["matchLabels"], pod_labels) and pdb["spec"].get("minAvailable") == 1,
          "the PodDisruptionBudget keeps one of the pods (minAvailable 1)")
    backends = [p["backend"]["service"] for r in ing["spec"]["rules"] for p in r["http"]["paths"]]
    check(all(b["name"] == svc["metadata"]["name"] and b["port"].get("name") in svc_ports for b in backends),
          "the Ingress routes to the Service's port")
    paths = {p["path"] for r in ing["spec"]["rules"] for p in r["http"]["paths"]}
    hook = settings.get("server", {}).get("webhook_path", "/webhook")
    check(paths == {hook}, f"the Ingress routes the webhook path only ({hook})", f"it routes {sorted(paths)}")
    check(subset(sm["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"])
          and all(e.get("port") in svc_ports and e.get("path") == "/metrics" for e in sm["spec"]["endpoints"]),
          "the ServiceMonitor selects the Service and scrapes /metrics on its port")


# ---------------------------------------------------------------------------------------------
def grafana():
    section("deploy/grafana/critic.json")
    path = "deploy/grafana/critic.json"
    try:
        dash = json.loads(read(path))
    except json.JSONDecodeError as e:
        fail(f"{path} is JSON: {e}")
        return
    ok(f"{path} is JSON")
    check(isinstance(dash.get("schemaVersion"), int) and dash["schemaVersion"] >= 36,
          f"schemaVersion {dash.get('schemaVersion')}")
    check(dash.get("uid") and dash.get("title"), "uid and title")
    variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    check(variables.get("datasource", {}).get("type") == "datasource"
          and variables["datasource"].get("query") == "prometheus", "a Prometheus datasource variable")
    panels = dash.get("panels", [])
    flat = panels + [p for row in panels for p in row.get("panels", [])]
    ids = [p.get("id") for p in flat]
    check(len(ids) == len(set(ids)) and None not in ids, f"{len(flat)} panels with distinct ids")
    check(all("gridPos" in p for p in flat), "every panel has a gridPos")
    exprs = []
    bad_ds = []
    for p in flat:
        for t in p.get("targets", []):
            exprs.append((p.get("title"), t.get("expr", "")))
            ds = (t.get("datasource") or p.get("datasource") or {}).get("uid")
            if ds != "${datasource}":
                bad_ds.append(p.get("title"))
    check(not bad_ds, "every query uses the datasource variable", f"not: {bad_ds}")
    for v in variables.values():
        q = v.get("query")
        if isinstance(q, dict):
            exprs.append((f"variable {v['name']}", q.get("query", "")))
    parse_errors = []
    names = set()
    for title, expr in exprs:
        names |= set(re.findall(r"\bcritic_[a-z0-9_]+", expr))
        if expr.startswith("label_values("):
            expr = re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", expr)
        e = (expr.replace("$__rate_interval", "5m").replace("$__range", "1h").replace("$__interval", "1m")
             .replace("$instance", ".*"))
        try:
            promql_parser.parse(e)
        except Exception as err:  # the parser raises plain exceptions
            parse_errors.append(f"{title}: {err}")
    check(not parse_errors, f"{len(exprs)} PromQL queries parse (promql-parser)", "; ".join(parse_errors))
    base_names = set()
    for n in names:
        stripped = re.sub(r"_(bucket|sum|count)$", "", n)
        base_names.add(stripped if f'"{stripped}"' in SRC_TEXT or n.endswith("_bucket") else n)
    missing = sorted(n for n in base_names if f'"{n}"' not in SRC_TEXT)
    check(not missing, f"the {len(base_names)} metric names the dashboard uses are in src/",
          f"not in src/: {', '.join(missing)}")


def main():
    if not os.path.isfile("Cargo.toml"):
        sys.exit("run from the repository root")
    for part in (dockerfile, compose, kubernetes, grafana):
        try:
            part()
        except Exception as e:  # a file too broken to walk is a failure, not a traceback
            fail(f"{part.__name__}: {type(e).__name__}: {e}")
    print(f"\n-- cross-file checks: {passes} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
