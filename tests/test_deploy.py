"""Deployment: the Dockerfile lints clean, the manifests validate offline, compose and the dashboard
fit together, and the container's entrypoint (nginx in front of TorchServe) really runs: open /ping,
one shared token, loopback-only TorchServe, and a clean stop.

No Docker engine runs here, so the image itself is not built; the entrypoint is run as the image
runs it (python -m deploy.container.entrypoint), outside a container, bound to 127.0.0.1.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import requests
import yaml

from archives.build import build, endpoints
from benchmarks import capacity
from deploy.container import entrypoint
from deploy.container.entrypoint import Ports
from serving.server import free_port, read_properties
from tests.support import ROOT, photo, png_bytes

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")  # oldest we document (preStop sleep), newest kubernetes-validate knows
BIN = Path(sys.executable).parent
# Where the dashboard reads memory on Kubernetes: the kubelet's cAdvisor metric, not the bundle's.
EXTERNAL_METRICS = {"container_memory_working_set_bytes"}


def load_all(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def load(path: Path) -> dict:
    (doc,) = load_all(path)
    return doc


def deployment_container() -> dict:
    return load(K8S / "deployment.yaml")["spec"]["template"]["spec"]["containers"][0]


# ---- the image ---------------------------------------------------------------------------------
def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) for every instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
            for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_passes_hadolint():
    run = subprocess.run([str(BIN / "hadolint"), "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0 and not run.stdout.strip(), run.stdout + run.stderr


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path):
    """The lint has teeth: the classic mistakes are reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nUSER root\n")
    run = subprocess.run([str(BIN / "hadolint"), "--no-color", str(bad)], capture_output=True, text=True)
    assert run.returncode != 0 and {"DL3007", "DL3014", "DL3002"} <= set(re.findall(r"DL\d+", run.stdout))


def test_image_runs_unprivileged_with_health_check_and_baked_models():
    instructions = dockerfile_instructions()
    kinds = [kind for kind, _ in instructions]
    user = dict(instructions)["USER"].split(":")[0]
    assert user.isdigit() and int(user) != 0 and kinds.index("USER") > kinds.index("COPY")
    assert int(user) == load(K8S / "deployment.yaml")["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    assert any(kind == "RUN" and "archives/build.py" in args for kind, args in instructions)
    assert "/ping" in dict(instructions)["HEALTHCHECK"]
    assert "deploy.container.entrypoint" in dict(instructions)["ENTRYPOINT"]
    assert set(map(int, dict(instructions)["EXPOSE"].split())) == {Ports.public, Ports.metrics}


# ---- Kubernetes --------------------------------------------------------------------------------
def kubernetes_objects() -> list[tuple[str, dict]]:
    files = sorted(K8S.glob("*.yaml")) + sorted((K8S / "examples").glob("*.yaml"))
    return [(str(path.relative_to(ROOT)), doc) for path in files for doc in load_all(path)
            if "apiVersion" in doc and doc.get("kind") != "Kustomization"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name,doc", kubernetes_objects(), ids=[n for n, _ in kubernetes_objects()])
def test_manifest_validates_against_kubernetes_schema(name, doc, version):
    kubernetes_validate.validate(doc, version, strict=True)


def test_kubernetes_validation_rejects_a_misspelt_field():
    doc = load(K8S / "deployment.yaml")
    doc["spec"]["replica"] = doc["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, KUBERNETES_VERSIONS[-1], strict=True)


def test_kustomization_applies_every_manifest_and_names_the_image():
    kustomization = load(K8S / "kustomization.yaml")
    manifests = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kustomization["resources"]) == manifests
    image = deployment_container()["image"].split(":")[0]
    assert [i["name"] for i in kustomization["images"]] == [image]


def test_probes_use_ping_on_the_proxy_port_and_the_token_comes_from_the_secret():
    pod = load(K8S / "deployment.yaml")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/ping", "port": Ports.public}
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= entrypoint.STARTUP_TIMEOUT_S
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": Ports.public, "metrics": Ports.metrics}
    token_file = Path(next(e["value"] for e in container["env"] if e["name"] == "TS_TOKEN_FILE"))
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert str(token_file.parent) == mounts["token"] and volumes["token"]["secret"].get("optional") is not True
    # read-only root: the entrypoint's state folder (under /tmp) must be the writable volume
    assert container["securityContext"]["readOnlyRootFilesystem"] and mounts["tmp"] == "/tmp"
    assert "emptyDir" in volumes["tmp"]


def test_memory_request_and_limit_cover_the_measured_workers():
    measured = json.loads((ROOT / "benchmarks" / "results" / "worker_memory.json").read_text())
    resources = deployment_container()["resources"]
    idle_mib = measured["frontend"]["idle_mib"] + sum(w["idle_mib"] for w in measured["workers"].values())
    assert set(measured["workers"]) == set(endpoints()), "measure every endpoint: python -m benchmarks.worker_memory"
    assert mebibytes(resources["requests"]["memory"]) >= idle_mib
    assert mebibytes(resources["limits"]["memory"]) >= measured["sum_of_peaks_mib"]
    assert resources["requests"]["cpu"] == resources["limits"]["cpu"] == "2"  # the capacity table's replica


def mebibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)(Mi|Gi)", quantity).groups()
    return float(number) * (1024 if unit == "Gi" else 1)


def test_service_and_hpas_point_at_the_deployment():
    deployment = load(K8S / "deployment.yaml")
    service = load(K8S / "service.yaml")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert {p["targetPort"] for p in service["spec"]["ports"]} == {p["name"] for p in deployment_container()["ports"]}
    for hpa in (load(K8S / "hpa.yaml"), load(K8S / "examples" / "hpa-queue-latency.yaml")):
        assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    pdb = load(K8S / "pdb.yaml")
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["minAvailable"] < load(K8S / "hpa.yaml")["spec"]["minReplicas"]


def test_queue_latency_hpa_asks_for_the_metric_the_adapter_rule_makes():
    hpa = load(K8S / "examples" / "hpa-queue-latency.yaml")
    (rule,) = load(K8S / "examples" / "prometheus-adapter-values.yaml")["rules"]["custom"]
    asked = [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    assert asked == [rule["name"]["as"]]
    assert set(metric_names(rule["seriesQuery"] + rule["metricsQuery"])) <= torchserve_metric_names()


def torchserve_metric_names() -> set[str]:
    """The frontend metrics TorchServe exports (its metrics.yaml)."""
    import ts
    config = yaml.safe_load((Path(ts.__file__).parent / "configs" / "metrics.yaml").read_text())
    return {m["name"] for kind in config["ts_metrics"].values() for m in kind}


# ---- KServe ------------------------------------------------------------------------------------
def kserve_schema() -> dict:
    schema = json.loads((DEPLOY / "kserve" / "inferenceservice.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def test_inferenceservice_matches_the_kserve_schema():
    jsonschema.Draft202012Validator(kserve_schema()).validate(load(DEPLOY / "kserve" / "inferenceservice.yaml"))


@pytest.mark.parametrize("spoil", [
    lambda isvc: isvc["spec"]["predictor"].update(scaleMetric="gpu"),
    lambda isvc: isvc["spec"]["predictor"].update(model={"modelFormat": {"name": "pytorch"}}),  # model and containers
    lambda isvc: isvc["spec"].update(predictors=isvc["spec"].pop("predictor")),
    lambda isvc: isvc["metadata"].update(name="Restoration_Serve"),
], ids=["unknown-scale-metric", "two-predictors", "misspelt-predictor", "bad-name"])
def test_kserve_schema_rejects_a_broken_inferenceservice(spoil):
    isvc = load(DEPLOY / "kserve" / "inferenceservice.yaml")
    spoil(isvc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(kserve_schema()).validate(isvc)


def test_inferenceservice_pod_fields_validate_as_a_kubernetes_pod_spec():
    """A predictor is KServe's fields plus an inline PodSpec: every other key must be a PodSpec field,
    and those must validate as one."""
    isvc = load(DEPLOY / "kserve" / "inferenceservice.yaml")
    predictor = isvc["spec"]["predictor"]
    kserve_fields = set(kserve_schema()["$defs"]["component"]["properties"]) | {"model"}
    pod_spec = {k: v for k, v in predictor.items() if k not in kserve_fields}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": isvc["metadata"]["name"]}, "spec": pod_spec}
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(pod, version, strict=True)


def test_inferenceservice_container_is_the_deployments():
    """The KServe predictor and the Deployment run the same container (apart from KServe's name and port naming)."""
    predictor = load(DEPLOY / "kserve" / "inferenceservice.yaml")["spec"]["predictor"]
    pod = load(K8S / "deployment.yaml")["spec"]["template"]["spec"]
    same = lambda c: {k: v for k, v in c.items() if k not in ("name", "ports")}  # noqa: E731
    assert same(predictor["containers"][0]) == same(pod["containers"][0])
    assert predictor["containers"][0]["ports"][0]["containerPort"] == Ports.public
    for key in ("securityContext", "volumes", "terminationGracePeriodSeconds", "automountServiceAccountToken"):
        assert predictor[key] == pod[key], key
    assert predictor["timeout"] >= entrypoint.longest_response_timeout()


# ---- compose, Prometheus, Grafana --------------------------------------------------------------
def compose() -> dict:
    return load(DEPLOY / "compose.yaml")


def test_compose_publishes_every_port_on_loopback_only():
    published = [p for service in compose()["services"].values() for p in service.get("ports", [])]
    assert published and all(str(p).startswith("127.0.0.1:") for p in published), published
    bundle = compose()["services"]["restoration-serve"]
    assert {int(str(p).rsplit(":", 1)[1]) for p in bundle["ports"]} == {Ports.public, Ports.metrics}


def test_compose_mounts_files_that_exist():
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert (DEPLOY / source).exists(), f"{name} mounts {source}, which is not in deploy/"
    assert (DEPLOY / compose()["services"]["restoration-serve"]["build"]["context"] / "Dockerfile").exists()


def test_compose_gpu_override_extends_the_bundle_service():
    override = load(DEPLOY / "compose.gpu.yaml")
    assert set(override["services"]) <= set(compose()["services"])
    (device,) = override["services"]["restoration-serve"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]


def test_prometheus_scrapes_the_bundles_metrics_port():
    (job,) = load(DEPLOY / "prometheus" / "prometheus.yml")["scrape_configs"]
    (target,) = [t for config in job["static_configs"] for t in config["targets"]]
    host, port = target.split(":")
    assert host in compose()["services"] and int(port) == Ports.metrics
    mounts = compose()["services"]["prometheus"]["volumes"]
    assert "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts


def dashboard() -> dict:
    return json.loads((DEPLOY / "grafana" / "dashboards" / "restoration-serve.json").read_text())


def dashboard_queries() -> list[str]:
    return [t["expr"] for panel in dashboard()["panels"] for t in panel["targets"]]


PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}


def metric_names(expr: str) -> list[str]:
    """Metric names in a PromQL expression (Grafana's or prometheus-adapter's templating allowed):
    what is left once strings, selectors, ranges, grouping labels and function calls are set aside."""
    expr = re.sub(r'"[^"]*"|\{[^}]*\}|\[[^\]]*\]', "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    return [name for name in re.findall(r"\b([A-Za-z_:][\w:]*)\b(?!\s*\()", expr) if name not in PROMQL_WORDS]


def test_metric_names_finds_bare_and_selected_metrics():
    expr = 'max by (Hostname) (MemoryUsed) / sum(rate(DecodeMs{ModelName=~"$endpoint"}[5m])) / clamp_min(x_total, 1e-9)'
    assert metric_names(expr) == ["MemoryUsed", "DecodeMs", "x_total"]


def test_grafana_provisioning_loads_the_dashboard_from_the_prometheus_datasource():
    (datasource,) = load(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml")["datasources"]
    assert datasource["url"] == "http://prometheus:9090" and "prometheus" in compose()["services"]
    uids = {t["datasource"]["uid"] for p in dashboard()["panels"] for t in p["targets"]}
    assert uids == {datasource["uid"]}
    (provider,) = load(DEPLOY / "grafana" / "provisioning" / "dashboards" / "restoration-serve.yaml")["providers"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in compose()["services"]["grafana"]["volumes"]


def test_dashboard_covers_what_the_issue_asks_for():
    names = {name for expr in dashboard_queries() for name in metric_names(expr)}
    for needed in ("ts_inference_requests_total", "Requests5XX", "ts_inference_latency_microseconds",
                   "ts_queue_latency_microseconds", "DecodeMs", "PredictMs", "EncodeMs", "MegapixelsProcessed",
                   "MemoryUsed"):
        assert needed in names, needed


# ---- capacity guide ----------------------------------------------------------------------------
def test_capacity_guide_table_is_the_one_the_results_give():
    assert capacity.DOC == ROOT / "docs" / "deployment.md"  # the README links the capacity guide there
    guide = capacity.DOC.read_text()
    block = guide.split(capacity.BEGIN, 1)[1].split(capacity.END, 1)[0].strip()
    load_ = float(re.search(r"replicas for ([\d.]+) requests/s", block).group(1))
    assert block == capacity.table(load_), "docs/deployment.md's capacity table is stale: run `make capacity`"


def test_replicas_follow_the_busy_time_of_the_load():
    seconds = {"a": 0.5, "b": 0.2}
    assert capacity.replicas({"a": 1.4}, seconds, 0.7) == 1          # 0.7 s of work per second
    assert capacity.replicas({"a": 1.5}, seconds, 0.7) == 2
    assert capacity.replicas({"a": 1.0, "b": 10.0}, seconds, 0.5) == 5  # 2.5 s of work per second


# ---- the container's entrypoint ----------------------------------------------------------------
def test_user_token_comes_from_file_then_environment(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("fileToken-0123456789\n")
    both = {"TS_TOKEN_FILE": str(token_file), "TS_TOKEN": "envToken-0123456789"}
    assert entrypoint.user_token(both) == "fileToken-0123456789"
    assert entrypoint.user_token({"TS_TOKEN": "envToken-0123456789"}) == "envToken-0123456789"
    assert entrypoint.user_token({"TS_TOKEN": ""}) is None


@pytest.mark.parametrize("bad", ["short", 'has"quote-0123456789', "has$dollar-0123456789", "has space 0123456789"])
def test_user_token_refuses_what_could_break_the_proxy_config(bad):
    with pytest.raises(SystemExit, match="at least 16 characters"):
        entrypoint.user_token({"TS_TOKEN": bad})


def test_missing_token_file_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="cannot read"):
        entrypoint.user_token({"TS_TOKEN_FILE": str(tmp_path / "absent")})


def test_without_a_token_one_is_drawn_each_start():
    (first, drawn), (second, _) = entrypoint.token_for({}), entrypoint.token_for({})
    assert drawn and first != second and entrypoint.TOKEN_PATTERN.fullmatch(first) and len(first) >= 32
    assert entrypoint.token_for({"TS_TOKEN": "mine-0123456789abcdef"}) == ("mine-0123456789abcdef", False)


def test_only_metrics_leave_loopback_and_token_authorization_stays_on():
    base = read_properties(ROOT / "config.properties")
    props = entrypoint.torchserve_properties(base, "0.0.0.0", Ports(), Path("/m"))
    addresses = {k: v for k, v in props.items() if k.endswith("_address")}
    assert addresses.pop("metrics_address") == f"http://0.0.0.0:{Ports.metrics}"
    assert all("127.0.0.1" in v for v in addresses.values()), addresses
    assert props["disable_token_authorization"] == "false" and props["enable_model_api"] == "false"


def test_nginx_config_takes_the_limits_from_torchserve_and_the_models():
    values = {"bind": "0.0.0.0", "port": 8080, "inference_port": 8090, "token": "t" * 20, "internal_key": "k",
              "max_request_bytes": read_properties(ROOT / "config.properties")["max_request_size"],
              "timeout_s": entrypoint.longest_response_timeout() + entrypoint.PROXY_MARGIN_S}
    text = entrypoint.nginx_conf(values)
    assert f"client_max_body_size {values['max_request_bytes']};" in text
    assert f'$http_authorization != "Bearer {values["token"]}"' in text
    with pytest.raises(ValueError, match="token"):
        entrypoint.nginx_conf({k: v for k, v in values.items() if k != "token"})


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        pytest.skip("needs nginx (Debian: apt-get install nginx), which the image installs")
    return found


def test_nginx_accepts_the_rendered_config(tmp_path):
    values = {"bind": "127.0.0.1", "port": free_port(), "inference_port": free_port(), "token": "t" * 20,
              "internal_key": "k", "max_request_bytes": 1024, "timeout_s": 60}
    (tmp_path / "nginx.conf").write_text(entrypoint.nginx_conf(values))
    check = subprocess.run([nginx_binary(), "-t", "-p", str(tmp_path), "-c", "nginx.conf", "-e", "stderr"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


@pytest.fixture(scope="module")
def container(tmp_path_factory):
    """The entrypoint as the image runs it, with the retouch model, bound to 127.0.0.1 on free ports,
    the token from a file as Kubernetes mounts it."""
    nginx_binary()
    work = tmp_path_factory.mktemp("container")
    build("retouch", work / "store")
    token = "k8s-secret-token-0123456789"
    (work / "token").write_text(token + "\n")
    ports = Ports(free_port(), free_port(), free_port(), free_port(), free_port(), free_port())
    log = open(work / "entrypoint.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "deploy.container.entrypoint", "--bind", "127.0.0.1", "--port", str(ports.public),
         "--metrics-port", str(ports.metrics), "--internal-ports", str(ports.inference), str(ports.management),
         str(ports.grpc_inference), str(ports.grpc_management), "--state", str(work / "state"),
         "--model-store", str(work / "store")],
        cwd=ROOT, env={**os.environ, "TS_TOKEN_FILE": str(work / "token")}, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{ports.public}"
    try:
        deadline = time.time() + 900
        while time.time() < deadline and process.poll() is None:
            try:
                if requests.get(f"{base}/ping", timeout=5).ok:
                    break
            except requests.RequestException:
                pass
            time.sleep(2)
        else:
            tail = (work / "entrypoint.log").read_text()[-3000:]
            pytest.fail(f"the entrypoint never became healthy; its log ends:\n{tail}")
        yield {"process": process, "ports": ports, "base": base, "token": token, "log": work / "entrypoint.log",
               "state": work / "state",
               "auth": {"Authorization": f"Bearer {token}"}}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(120)
        log.close()


def test_container_ping_is_open_through_the_proxy_but_not_on_torchserve_itself(container):
    """What the proxy is for: TorchServe 0.12 refuses /ping without its key, so probes could not use it."""
    assert requests.get(f"{container['base']}/ping", timeout=10).json()["status"] == "Healthy"
    direct = requests.get(f"http://127.0.0.1:{container['ports'].inference}/ping", timeout=10)
    assert direct.status_code == 400 and "InvalidKeyException" in direct.text


def test_container_predictions_need_the_users_token(container):
    url, body = f"{container['base']}/predictions/retouch", png_bytes(photo(96, 64))
    headers = {"Content-Type": "image/png"}
    ok = requests.post(url, data=body, headers={**headers, **container["auth"]}, timeout=300)
    assert ok.status_code == 200 and ok.headers["Content-Type"] == "image/png"
    for auth in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": container["token"]}):
        refused = requests.post(url, data=body, headers={**headers, **auth}, timeout=60)
        assert refused.status_code == 401 and refused.json()["type"] == "InvalidToken"
    assert container["token"] not in container["log"].read_text()  # a supplied token is never logged


def test_container_too_large_upload_gets_a_json_413(container):
    size = int(read_properties(ROOT / "config.properties")["max_request_size"]) + 1
    reply = requests.post(f"{container['base']}/predictions/retouch", data=b"\0" * size, timeout=120,
                          headers={"Content-Type": "image/png", **container["auth"]})
    assert reply.status_code == 413 and reply.json()["type"] == "RequestTooLarge"


def test_container_management_stays_on_loopback_behind_torchserves_key(container):
    props = read_properties(container["state"] / "config.properties")
    assert props["management_address"].startswith("http://127.0.0.1:")
    reply = requests.get(f"http://127.0.0.1:{container['ports'].management}/models", timeout=10,
                         headers=container["auth"])  # the user's token is not TorchServe's key
    assert reply.status_code == 400


def test_container_exports_every_metric_the_dashboard_plots(container):
    """Every metric the dashboard plots is at the metrics API once a request has been answered
    (TorchServe's system metrics appear after its first collection, within a minute)."""
    requests.post(f"{container['base']}/predictions/retouch", data=png_bytes(photo(64, 48)),
                  headers={"Content-Type": "image/png", **container["auth"]}, timeout=300).raise_for_status()
    wanted = {name for expr in dashboard_queries() for name in metric_names(expr)} - EXTERNAL_METRICS
    deadline, exported = time.time() + 150, set()
    while time.time() < deadline:
        text = requests.get(f"http://127.0.0.1:{container['ports'].metrics}/metrics", timeout=10).text
        exported = set(re.findall(r"^# TYPE (\S+)", text, re.M)) | set(re.findall(r"^([A-Za-z_]\w*)[{ ]", text, re.M))
        if wanted <= exported:
            break
        time.sleep(5)
    assert wanted <= exported, f"not exported: {sorted(wanted - exported)}"


def test_container_sigterm_stops_nginx_and_torchserve(container):
    """Last in this file: the clean stop Docker and Kubernetes rely on."""
    process, ports = container["process"], container["ports"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(150) == 0
    for port in (ports.public, ports.metrics, ports.inference, ports.management):
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/ping", timeout=5)
