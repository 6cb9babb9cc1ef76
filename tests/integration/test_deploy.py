"""The container image and the Helm chart (helm/stepboard), checked without a cluster.

The chart is linted, rendered with each value set under helm/stepboard/ci/ and validated
offline against the Kubernetes schemas bundled in ``kubernetes-validate``. The rendered
environment of every pod is fed to the services' own ``from_env`` readers, recording which
variables they ask for: a variable the chart sets that no reader asks for (a typo, a rename
in common/) or a required one it forgets fails here. The Dockerfile cannot be built on this
machine, so its COPY sources, the package it installs, its entry points and its user are
checked instead.
"""

import importlib.metadata
import importlib.util
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from packaging.version import Version

from common import smoke
from common.config import LogSettings
from common.mysql_pools import MySQLSettings
from common.settings import SETTINGS
from ingest_svc.config import IngestConfig
from rank_svc.config import ArchiveConfig, ConsumerConfig, PrecomputeConfig, RankConfig
from social_svc.config import SocialConfig
from tests.deploy_render import (
    CHART,
    CI_VALUES,
    COMPONENTS,
    NAMESPACE,
    RELEASE,
    SERVERS,
    HelmError,
    RecordingEnv,
    container_env,
    helm,
    lint,
    render,
    render_notes,
    template,
)
from tests.stack import ROOT

# What each rendered pod runs, and the reader its entry point loads its settings with.
RUNS = {
    "ingest": (["python", "-m", "ingest_svc"], IngestConfig.from_env),
    "social": (["python", "-m", "social_svc"], SocialConfig.from_env),
    "rank": (["python", "-m", "rank_svc"], RankConfig.from_env),
    "consumer": (["python", "-m", "rank_svc.consumer"], ConsumerConfig.from_env),
    "precompute": (["python", "-m", "rank_svc.precompute"], PrecomputeConfig.from_env),
    "archive": (["python", "-m", "rank_svc.archive"], ArchiveConfig.from_env),
    "migration": (["python", "-m", "social_svc", "migrate"], MySQLSettings.from_env),
}
# Kubernetes versions the rendered objects must be valid for: the chart's kubeVersion floor
# (native gRPC probes are GA from 1.27) and the newest the bundled schemas know.
KUBE_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}  # CRDs: no schema, checked by hand below

value_sets = pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.stem)


def rendered(values_file: Path):
    return render((values_file,))


def test_the_three_ci_value_sets_exist_and_helm_is_installed():
    assert {p.name for p in CI_VALUES} >= {
        "default-values.yaml", "sentinel-tls-values.yaml", "cluster-netpol-values.yaml",
    }
    version = subprocess.run([helm(), "version", "--short"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("v3"), version


@value_sets
def test_helm_lint_strict(values_file):
    done = lint(values_file)
    assert done.returncode == 0, done.stdout + done.stderr


@value_sets
def test_rendered_objects_are_valid_kubernetes(values_file):
    docs = rendered(values_file).docs
    assert docs
    for doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                path = ".".join(str(p) for p in error.path)
                pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} @ {version}: "
                            f"{path}: {error.message}")


def test_kubernetes_validate_rejects_what_a_cluster_would():
    """The offline validator really checks (strict: unknown fields are errors)."""
    deployment = rendered(CI_VALUES[0]).component("Deployment", "rank")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpcc"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBE_VERSIONS[-1], strict=True)


@value_sets
def test_every_component_is_deployed_with_its_entry_point(values_file):
    result = rendered(values_file)
    for component, (command, _) in RUNS.items():
        container = result.pod(component)["containers"][0]
        assert container["command"] == command, component
        assert _runnable(command[2]), f"{command[2]} is not a runnable module"
    for component in SERVERS:
        services = [
            s for s in result.of_kind("Service")
            if s["metadata"]["labels"]["app.kubernetes.io/component"] == component
        ]
        headless = sorted(s["spec"].get("clusterIP") == "None" for s in services)
        assert headless == [False, True], f"{component}: not one Service and one headless"
        pod_labels = result.component("Deployment", component)["spec"]["template"]["metadata"][
            "labels"
        ]
        for service in services:
            assert service["spec"]["selector"].items() <= pod_labels.items()
            assert service["spec"]["ports"][0]["targetPort"] == "grpc"
    assert result.of_kind("ServiceAccount")


@value_sets
def test_servers_have_grpc_health_probes(values_file):
    result = rendered(values_file)
    tls = result.values["tls"]
    for component in SERVERS:
        container = result.pod(component)["containers"][0]
        port = _port(container, "grpc")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            spec = container[probe]
            if tls["enabled"] and component in tls["servers"]:
                # The kubelet's gRPC probe cannot do TLS: the image's grpc_health_probe can.
                assert spec["exec"]["command"] == _tls_probe(result.values, port), (
                    component, probe)
                for flag in spec["exec"]["command"]:
                    if flag.startswith(("-tls-ca-cert=", "-tls-client-")):
                        assert _projected(result.pod(component), container,
                                          flag.split("=", 1)[1]), (component, flag)
            else:
                assert spec["grpc"] == {"port": port, "service": ""}, (component, probe)
    for component in ("consumer", "precompute"):
        container = result.pod(component)["containers"][0]
        if result.values["metrics"]["enabled"]:
            assert container["livenessProbe"]["tcpSocket"] == {"port": "metrics"}


def _tls_probe(values, port):
    """The grpc_health_probe command a TLS server's probes run: the CA of tls.caKey, the
    server name of probes.tlsServerName (else social's), the pod's certificate under mTLS."""
    tls = values["tls"]
    name = (values["probes"]["tlsServerName"] or tls["socialServerName"]
            or f"{RELEASE}-stepboard-social-headless")
    command = ["grpc_health_probe", f"-addr=localhost:{port}", "-tls",
               f"-tls-ca-cert=/etc/stepboard/tls/{tls['caKey']}", f"-tls-server-name={name}"]
    if tls["clientCaKey"]:
        command += [f"-tls-client-cert=/etc/stepboard/tls/{tls['certKey']}",
                    f"-tls-client-key=/etc/stepboard/tls/{tls['keyKey']}"]
    return command


def _projected(pod, container, path):
    """Whether ``path`` is a file a Secret volume mounted in ``container`` projects."""
    for mount in container["volumeMounts"]:
        prefix = mount["mountPath"].rstrip("/") + "/"
        if path.startswith(prefix):
            volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
            items = volume.get("secret", {}).get("items", [])
            return path.removeprefix(prefix) in {item["path"] for item in items}
    return False


def test_tls_probes_check_health_over_tls_with_the_pod_certificate_under_mtls():
    """Server-only TLS on ingest and rank (ci/ops-values.yaml) and mTLS everywhere
    (ci/sentinel-tls-values.yaml): exec probes over TLS, never a bare TCP connect."""
    ops = rendered(CHART / "ci" / "ops-values.yaml")
    assert "grpc" in ops.pod("social")["containers"][0]["readinessProbe"]  # plaintext social
    rank = ops.pod("rank")["containers"][0]["readinessProbe"]["exec"]["command"]
    assert "-tls-server-name=stepboard.example.internal" in rank
    assert not any(flag.startswith("-tls-client-") for flag in rank)
    mtls = rendered(CHART / "ci" / "sentinel-tls-values.yaml")
    for component in SERVERS:
        command = mtls.pod(component)["containers"][0]["livenessProbe"]["exec"]["command"]
        assert "-tls-client-cert=/etc/stepboard/tls/tls.crt" in command, component
        assert "-tls-server-name=stepboard-social.stepboard.svc" in command, component
    for result in (ops, mtls):
        for _, pod in result.pods():
            for container in pod["containers"]:
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    assert "tcpSocket" not in container.get(probe, {}) or (
                        container[probe]["tcpSocket"] == {"port": "metrics"})


def test_dockerfile_puts_grpc_health_probe_on_the_path():
    """The exec probes' grpc_health_probe: built in a Go stage at a pinned version and
    copied into a directory of the final stage's PATH."""
    stages = _stages()
    go_stage = next(s for s in stages if "go install" in " ".join(r for _, r in s))
    install = _with_arg_defaults(next(r for w, r in go_stage if w == "RUN" and "go install" in r))
    assert re.search(r"github\.com/grpc-ecosystem/grpc-health-probe@v\d+\.\d+\.\d+", install)
    alias = go_stage[0][1].split()[-1]
    final = stages[-1]
    copies = [r for w, r in final if w == "COPY" and f"--from={alias}" in r]
    assert any(r.split()[-1] in ("/usr/local/bin/", "/usr/local/bin/grpc_health_probe")
               and "grpc-health-probe" in r for r in copies), copies


@value_sets
def test_helm_test_pod_checks_every_server_and_one_ranking(values_file):
    """The ``helm test`` hook runs common.smoke against the three Services, with TLS for
    exactly the TLS servers, the files it reads projected, and a caller the policy lets
    call GetGlobalTop."""
    result = rendered(values_file)
    v = result.values
    (pod,) = [d for d in result.of_kind("Pod")
              if d["metadata"]["annotations"].get("helm.sh/hook") == "test"]
    spec = pod["spec"]
    (container,) = spec["containers"]
    command = container["command"]
    assert command[:3] == ["python", "-m", "common.smoke"] and _runnable("common.smoke")
    args = smoke.build_parser().parse_args(command[3:])
    for server in SERVERS:
        service = result.get("Service", f"{RELEASE}-stepboard-{server}")
        assert getattr(args, server) == (f"{service['metadata']['name']}:"
                                         f"{service['spec']['ports'][0]['port']}")
    tls = set(v["tls"]["servers"]) if v["tls"]["enabled"] else set()
    assert set(args.tls) == tls
    env = {e["name"]: e.get("value") for e in container["env"]}
    files = [env[k] for k in env if k.endswith("_FILE")]
    assert all(_projected(spec, container, path) for path in files), files
    if tls:
        assert env["STEPBOARD_CLIENT_TLS_SERVER_NAME"] == _tls_probe(v, 0)[4].split("=")[1]
        assert ("STEPBOARD_CLIENT_TLS_CERT_FILE" in env) == bool(v["tls"]["clientCaKey"])
    if v["auth"]["enabled"]:
        assert args.caller == v["helmTest"]["caller"]
        granted = v["auth"]["appCallers"][args.caller]
        assert {"stepboard.v1.Ranking/*", "stepboard.v1.Ranking/GetGlobalTop"} & set(granted)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    test_labels = pod["metadata"]["labels"]
    for policy in result.of_kind("NetworkPolicy"):  # the servers let the test Pod in
        component = policy["metadata"]["labels"]["app.kubernetes.io/component"]
        if component in SERVERS:
            (grpc_rule,) = [r for r in policy["spec"]["ingress"]
                            if r["ports"][0]["port"] == "grpc"]
            assert any(_selects(peer.get("podSelector"), test_labels) and
                       "namespaceSelector" not in peer for peer in grpc_rule["from"]), component


def _selects(selector, labels):
    """Whether a label selector (matchLabels / matchExpressions with In) matches."""
    if selector is None:
        return False
    return selector.get("matchLabels", {}).items() <= labels.items() and all(
        labels.get(e["key"]) in e["values"] for e in selector.get("matchExpressions", [])
    )


def test_image_digest_labels_priority_env_and_volumes_reach_every_pod():
    """ci/ops-values.yaml: the digest wins over the tag, and the global extras (podLabels,
    priorityClassName, extraEnv, extraVolumes/Mounts) reach every pod, a component's own
    settings winning; the selectors keep only the chart's labels."""
    result = rendered(CHART / "ci" / "ops-values.yaml")
    v = result.values
    pods = [*result.pods(), ("test", result.of_kind("Pod")[0]["spec"])]
    assert len(pods) == len(COMPONENTS) + 2  # with the migration Job and the test Pod
    for component, pod in pods:
        own = v.get(component, {})
        (container,) = pod["containers"]
        assert container["image"] == f"stepboard@{v['image']['digest']}", component
        assert pod["priorityClassName"] == (own.get("priorityClassName")
                                            or v["priorityClassName"]), component
        env = [(e["name"], e.get("value")) for e in container["env"]]
        extra = [(e["name"], e["value"]) for e in v["extraEnv"] + own.get("extraEnv", [])]
        assert env[-len(extra):] == extra, component  # the component's own last: it wins
        assert {"name": "corp-ca", "configMap": {"name": "corp-ca-bundle"}} in pod["volumes"]
        assert v["extraVolumeMounts"][0] in container["volumeMounts"], component
    rank = result.component("Deployment", "rank")
    labels = rank["spec"]["template"]["metadata"]["labels"]
    assert labels.items() >= {"team": "steps", "cost-center": "42", "tier": "serving"}.items()
    assert "team" not in rank["spec"]["selector"]["matchLabels"]
    assert result.pod("rank")["priorityClassName"] == "stepboard-critical"
    default = rendered(CI_VALUES[0]).pod("rank")
    assert "priorityClassName" not in default
    assert default["containers"][0]["image"] == "stepboard:0.1.0"


def test_chart_metadata_names_the_project_and_its_kubernetes_floor():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == ">=1.27.0-0"  # native gRPC probes are GA from 1.27
    assert chart["maintainers"] and all(m["name"] for m in chart["maintainers"])
    assert {"grpc", "leaderboard", "kafka", "redis"} <= set(chart["keywords"])
    images = yaml.safe_load(chart["annotations"]["artifacthub.io/images"])
    assert images == [{"name": "stepboard", "image": f"stepboard:{chart['appVersion']}"}]


@value_sets
def test_pods_run_as_non_root_read_only_without_capabilities(values_file):
    for component, pod in rendered(values_file).pods():
        assert pod["securityContext"]["runAsNonRoot"] is True, component
        assert pod["securityContext"]["runAsUser"] != 0, component
        assert pod["automountServiceAccountToken"] is False, component
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, component
            assert context["readOnlyRootFilesystem"] is True, component
            assert context["allowPrivilegeEscalation"] is False, component
            assert context["capabilities"]["drop"] == ["ALL"], component
            assert container["resources"]["requests"], component
            assert container["resources"]["limits"]["memory"], component
            # The one writable path of a read-only container.
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], component


@value_sets
def test_rendered_env_is_exactly_what_the_services_read(values_file, tmp_path):
    """Every STEPBOARD_* variable set is asked for by the component's reader, and the
    reader accepts the environment (so every required one is there and well formed)."""
    result = rendered(values_file)
    for component, (_, read) in RUNS.items():
        pod = result.pod(component)
        env = container_env(result, pod, tmp_path / component)
        recording = RecordingEnv(env)
        LogSettings.from_env(recording)
        config = read(recording)
        chart_set = {name for name in env if name.startswith("STEPBOARD_")}
        unread = chart_set - recording.asked
        assert not unread, f"{component}: the chart sets {sorted(unread)}, nothing reads them"
        extra = result.values["extraEnv"] + result.values[component].get("extraEnv", [])
        helpers = {name for name in env if not name.startswith("STEPBOARD_")} - {
            e["name"] for e in extra}  # what the operator adds
        assert all(re.fullmatch(r"MYSQL_SHARD_DSN_\d+", n) for n in helpers), helpers
        _check_config(result, component, pod, config)


def test_the_readers_are_the_ones_the_entry_points_load():
    """RUNS pairs each entry point with a reader; the entry point's source must use it."""
    for command, read in RUNS.values():
        source = Path(importlib.util.find_spec(_main_module(command[2])).origin).read_text()
        assert read.__qualname__ in source, (command, read.__qualname__)


def test_env_names_cover_every_setting_in_common():
    """Every setting a service reads (common/settings.py) is either set by the chart
    in some value set or deliberately left to its default."""
    left_to_default = {
        "AUTH_TOKENS",  # the chart mounts a tokens file instead (STEPBOARD_AUTH_TOKENS_FILE)
        "CLIENT_TOKEN",  # likewise, STEPBOARD_CLIENT_TOKEN_FILE
        "AUTH_POLICY_FILE",  # the chart sets the policy inline (STEPBOARD_AUTH_POLICY)
        "REDIS_URL",  # also left out in sentinel/cluster mode, where it is optional
        "GRPC_HOST",  # a pod's servers listen on all its addresses, the default
        "CONSUMER_BURST_REPORTS",  # one batch, its default, suits a pod (else extraEnv)
    }
    in_code = {s.name for s in SETTINGS.values() if set(s.components) & set(COMPONENTS)}
    assert {"GRPC_PORT", "REDIS_MODE", "MYSQL_SHARD_DSNS", "SOCIAL_ADDR"} <= in_code
    set_by_chart = set()
    for values_file in CI_VALUES:
        result = rendered(values_file)
        for _, pod in result.pods():
            for item in pod["containers"][0].get("env", []):
                set_by_chart.add(item["name"])
        for config_map in result.of_kind("ConfigMap"):
            set_by_chart |= set(config_map["data"])
    missing = {f"STEPBOARD_{n}" for n in in_code - left_to_default} - set_by_chart
    assert not missing, f"settings the chart never sets: {sorted(missing)}"


def _check_config(result, component, pod, config):
    values = result.values
    container = pod["containers"][0]
    if component in SERVERS:
        server = config.server
        assert server.grpc_port == _port(container, "grpc") == values[component]["grpcPort"]
        expect_tls = values["tls"]["enabled"] and component in values["tls"]["servers"]
        assert server.tls.enabled == expect_tls, component
        expect_mtls = expect_tls and bool(values["tls"]["clientCaKey"])
        assert bool(server.tls.client_ca_file) == expect_mtls, component
        expect_auth = values["auth"]["enabled"] and component in values["auth"]["servers"]
        assert (server.auth_tokens is not None) == expect_auth, component
        assert (server.auth_policy is not None) == expect_auth, component
        if expect_auth:
            assert server.auth_tokens == {"s3cret-token": "app-backend", "other-token": "ops"}
            auth = values["auth"]
            assert set(server.auth_policy.grants) == {*auth["policy"], *auth["appCallers"]}
        assert server.max_connection_age_s == values["server"]["maxConnectionAgeSeconds"]
        assert (server.max_connection_age_grace_s
                == values["server"]["maxConnectionAgeGraceSeconds"])
        drain = server.grace_seconds + int(container["lifecycle"]["preStop"]["exec"]["command"][1])
        assert pod["terminationGracePeriodSeconds"] > drain, component
    if component != "migration":
        metrics = getattr(config, "metrics_port", None) or getattr(
            getattr(config, "server", None), "metrics_port", None
        )
        if values["metrics"]["enabled"]:
            assert metrics == _port(container, "metrics") == values["metrics"]["port"]
        else:
            assert metrics is None
    redis = getattr(config, "redis", None)
    if redis is not None:
        mode = values["redis"]["mode"]
        assert redis.mode == mode
        if mode == "sentinel":
            assert len(redis.sentinels) == len(values["redis"]["sentinels"])
        if mode == "cluster":
            assert len(redis.cluster_nodes) == len(values["redis"]["clusterNodes"])
        assert bool(redis.password) == bool(values["redis"]["auth"]["existingSecret"])
        assert redis.allow_eviction == values["redis"]["allowEviction"]
    if component == "social":
        assert (config.redis is not None) == values["social"]["cache"]["enabled"]
    mysql = config if component == "migration" else getattr(config, "mysql", None)
    if mysql is not None:
        shards = values["mysql"]["shards"]
        assert len(mysql.shard_dsns) == (len(shards) if shards else 2)
        assert mysql.logical_shards == values["mysql"]["logicalShards"]
    if component in ("ingest", "rank", "precompute"):
        target = config.social_addr
        assert target.startswith("dns:///"), f"social is not dialed by DNS name: {target}"
        host, _, port = target.removeprefix("dns:///").rpartition(":")
        social = result.get("Service", host)
        assert social is not None, f"STEPBOARD_SOCIAL_ADDR names no Service: {host}"
        assert social["spec"]["clusterIP"] == "None", f"{host} is not headless"
        assert social["spec"]["ports"][0]["port"] == int(port)
        deployment = result.component("Deployment", "social")
        assert social["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    if component in ("ingest", "consumer"):
        kafka = config.kafka
        assert kafka.topic == values["kafka"]["topic"]
        assert kafka.security_protocol == values["kafka"]["securityProtocol"]
        assert bool(kafka.sasl_password) == bool(values["kafka"]["sasl"]["mechanism"])
        assert bool(kafka.ssl_ca_file) == bool(values["kafka"]["ssl"]["caSecret"])
    if component in ("rank", "consumer", "precompute"):
        assert config.board.shards == values["board"]["shards"]


@value_sets
def test_graceful_termination_outlasts_the_drain(values_file):
    result = rendered(values_file)
    for component in SERVERS:
        pod = result.pod(component)
        container = pod["containers"][0]
        sleep = container["lifecycle"]["preStop"]["exec"]["command"]
        assert sleep[0] == "sleep"
        env = result.get("ConfigMap", container["envFrom"][0]["configMapRef"]["name"])["data"]
        grace = float(env["STEPBOARD_GRACE_SECONDS"])
        assert pod["terminationGracePeriodSeconds"] > grace + int(sleep[1]), component
    for component in ("consumer", "precompute"):
        assert result.pod(component)["terminationGracePeriodSeconds"] >= 10


def test_config_checksums_follow_the_config():
    def checksums(*sets):
        result = render(sets=sets)
        return {
            c: result.component("Deployment", c)["spec"]["template"]["metadata"]["annotations"][
                "checksum/config"
            ]
            for c in COMPONENTS
        }

    base = checksums()
    assert all(re.fullmatch(r"[0-9a-f]{64}", v) for v in base.values())
    everywhere = checksums("logLevel=debug")
    assert all(everywhere[c] != base[c] for c in COMPONENTS)
    rank_only = checksums("rank.friendsStaleSeconds=300")
    assert {c for c in COMPONENTS if rank_only[c] != base[c]} == {"rank"}


def test_default_values_autoscale_the_servers_with_budgets():
    result = rendered(CHART / "ci" / "default-values.yaml")
    for component in SERVERS:
        hpa = result.component("HorizontalPodAutoscaler", component)
        deployment = result.component("Deployment", component)
        assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        assert "replicas" not in deployment["spec"], "the HPA owns replicas"
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert result.component("HorizontalPodAutoscaler", "consumer") is None
    for component in COMPONENTS:
        pdb = result.component("PodDisruptionBudget", component)
        labels = result.component("Deployment", component)["spec"]["template"]["metadata"][
            "labels"
        ]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert not result.of_kind("NetworkPolicy")
    assert not result.of_kind("ServiceMonitor")
    assert not result.of_kind("PrometheusRule")
    assert result.component("ConfigMap", "dashboards") is None


def test_sentinel_value_set_wires_shards_tls_tokens_and_monitoring():
    result = rendered(CHART / "ci" / "sentinel-tls-values.yaml")
    social = result.pod("social")["containers"][0]
    dsn_refs = [e for e in social["env"] if e["name"].startswith("MYSQL_SHARD_DSN_")]
    assert [e["valueFrom"]["secretKeyRef"]["key"] for e in dsn_refs] == [
        "shard0", "shard1", "shard2", "shard3",
    ]
    mounted = {}
    for component in ("ingest", "social", "rank", "precompute"):
        pod = result.pod(component)
        tls = next(v for v in pod["volumes"] if v["name"] == "tls")
        assert tls["secret"]["secretName"] == "stepboard-tls"
        tokens = next(v for v in pod["volumes"] if v["name"] == "auth-tokens")
        assert tokens["secret"]["secretName"] == "stepboard-tokens"
        mounted[component] = (
            sorted(i["key"] for i in tls["secret"]["items"]),
            sorted(i["key"] for i in tokens["secret"]["items"]),
        )
    certificates = ["ca.crt", "tls.crt", "tls.key"]
    assert mounted["social"] == (certificates, ["tokens"])
    # Each client of social mounts its own token only.
    assert mounted["ingest"] == (certificates, ["ingest-token", "tokens"])
    assert mounted["rank"] == (certificates, ["rank-token", "tokens"])
    assert mounted["precompute"] == (certificates, ["precompute-token"])
    client_env = result.component("ConfigMap", "precompute")["data"]
    assert client_env["STEPBOARD_CLIENT_TLS_CA_FILE"] == "/etc/stepboard/tls/ca.crt"
    assert client_env["STEPBOARD_CLIENT_TOKEN_FILE"] == "/etc/stepboard/auth/precompute-token"
    assert not [v for v in result.pod("consumer")["volumes"] if v["name"] in ("tls", "auth-tokens")]
    consumer = result.component("Deployment", "consumer")
    assert consumer["spec"]["replicas"] == result.values["kafka"]["partitions"] == 24
    assert consumer["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0
    monitor = result.of_kind("ServiceMonitor")[0]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    scraped = [
        s for s in result.of_kind("Service")
        if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
    ]
    assert {s["metadata"]["labels"]["app.kubernetes.io/component"] for s in scraped} == set(
        COMPONENTS
    )
    assert all(any(p["name"] == "metrics" for p in s["spec"]["ports"]) for s in scraped)


def test_sentinel_value_set_ships_the_dashboard_and_the_alerts():
    """The dashboard ConfigMap carries the Grafana sidecar's label and the chart's JSON as
    is; the PrometheusRule has every alert of docs/operations.md, scoped to the release's
    namespace (tests/integration/test_observability.py checks the metric names)."""
    result = rendered(CHART / "ci" / "sentinel-tls-values.yaml")
    dashboards = result.component("ConfigMap", "dashboards")
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboards["data"]["stepboard.json"]) == json.loads(
        (CHART / "dashboards" / "stepboard.json").read_text()
    )
    (rule,) = result.of_kind("PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    rules = {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}
    assert set(rules) == {
        "StepboardConsumerLagRecords", "StepboardConsumerLagSeconds", "StepboardFreshnessP99",
        "StepboardErrorRatio", "StepboardStaleFriendLists", "StepboardDeadLetters",
        "StepboardDeadLettersNotStored", "StepboardPrecomputedRankingsOld",
    }
    for alert in rules.values():
        assert f'namespace="{NAMESPACE}"' in alert["expr"], alert["alert"]
    max_age = result.values["precompute"]["maxAgeSeconds"]
    assert rules["StepboardPrecomputedRankingsOld"]["expr"].endswith(f"> {max_age}")


CALLERS = {"matchLabels": {"stepboard.io/client": "true"}}
# The app namespaces of ci/cluster-netpol-values.yaml, as NetworkPolicy peers.
APP_PEERS = [
    {
        "namespaceSelector": {"matchExpressions": [{
            "key": "kubernetes.io/metadata.name", "operator": "In",
            "values": ["app-backend", "ops-tools"],
        }]},
        "podSelector": CALLERS,
    },
    {"namespaceSelector": {"matchLabels": {"team": "app-backend"}}, "podSelector": CALLERS},
]
# The release's helm test Pod, which calls every server.
TEST_PEER = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "stepboard",
                                             "app.kubernetes.io/instance": RELEASE,
                                             "app.kubernetes.io/component": "test"}}}


def test_social_is_closed_to_app_namespaces_when_no_app_caller_may_call_it(tmp_path):
    apps = tmp_path / "apps.yaml"
    apps.write_text(yaml.safe_dump({"auth": {"appCallers": {
        "app-backend": ["stepboard.v1.StepIngest/*", "stepboard.v1.Ranking/*"],
    }}}))
    result = render((CHART / "ci" / "cluster-netpol-values.yaml", apps))
    social = result.component("NetworkPolicy", "social")
    (grpc_rule,) = [r for r in social["spec"]["ingress"] if r["ports"][0]["port"] == "grpc"]
    (peer,) = grpc_rule["from"]
    assert set(peer) == {"podSelector"}
    assert result.component("NetworkPolicy", "rank")["spec"]["ingress"][0]["from"] == [
        *APP_PEERS, TEST_PEER]


def test_auth_is_on_by_default_with_least_privilege_per_component():
    result = rendered(CHART / "ci" / "default-values.yaml")
    policy = json.loads(result.component("ConfigMap", "social")["data"]["STEPBOARD_AUTH_POLICY"])
    fg = "stepboard.v1.FriendGraph/"
    assert policy["ingest"] == [fg + "CheckFriendship"]
    assert all(m.startswith(fg) for c in ("rank", "precompute") for m in policy[c])
    assert not {m.removeprefix(fg) for c in ("rank", "precompute") for m in policy[c]} & {
        "AddFriendship", "RemoveFriendship", "UpsertProfile", "SetRankingVisibility",
        "SetStepsHidden",
    }
    assert set(policy) == {"ingest", "rank", "precompute", "app-backend"}
    for component in ("consumer", "archive"):
        data = result.component("ConfigMap", component)["data"]
        assert not any("TOKEN" in name for name in data), component


def test_notes_warn_when_auth_is_turned_off(tmp_path):
    off = tmp_path / "off.yaml"
    off.write_text("auth: {enabled: false}\n")
    assert "WARNING: auth.enabled is false" in render_notes((off,), tmp_path / "off")
    on = render_notes((CHART / "ci" / "default-values.yaml",), tmp_path / "on")
    assert "WARNING" not in on


def test_cluster_value_set_has_network_policies_and_fixed_replicas():
    result = rendered(CHART / "ci" / "cluster-netpol-values.yaml")
    assert not result.of_kind("HorizontalPodAutoscaler")
    for component in SERVERS:
        deployment = result.component("Deployment", component)
        assert deployment["spec"]["replicas"] == result.values[component]["replicas"]
    assert result.component("Deployment", "precompute")["spec"]["replicas"] == 2
    policies = {c: result.component("NetworkPolicy", c) for c in COMPONENTS}
    assert all(policies.values())
    for component, policy in policies.items():
        labels = result.component("Deployment", component)["spec"]["template"]["metadata"][
            "labels"
        ]
        assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        grpc_rules = [r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == "grpc"]
        metrics_rules = [r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == "metrics"]
        assert metrics_rules[0]["from"] == [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
        ]
        if component in ("ingest", "rank"):
            assert grpc_rules[0]["from"] == [*APP_PEERS, TEST_PEER]
        elif component == "social":
            # app-backend may call FriendGraph methods: its namespaces reach social too.
            peer, *apps = grpc_rules[0]["from"]
            assert apps == APP_PEERS
            assert set(peer) == {"podSelector"}, "only pods of this namespace"
            expressions = {e["key"]: e["values"] for e in peer["podSelector"]["matchExpressions"]}
            assert sorted(expressions["app.kubernetes.io/component"]) == [
                "ingest", "precompute", "rank", "test"
            ]
            assert expressions["app.kubernetes.io/instance"] == ["sb"]
        else:
            assert not grpc_rules
    social_cm = result.component("ConfigMap", "social")["data"]
    assert social_cm["STEPBOARD_SOCIAL_CACHE"] == "false"
    assert not any(k.startswith("STEPBOARD_REDIS_") for k in social_cm)
    # no generations to check: rank keeps a friend list for friendsFreshSeconds only
    assert result.component("ConfigMap", "rank")["data"]["STEPBOARD_SOCIAL_CACHE"] == "false"


def test_rank_and_precompute_check_friend_lists_against_the_cache_social_writes():
    """Rank reads social's cache (the generations, lists and profiles social keeps there)
    and precompute the generations: same switch, namespace and TTL, and the same Redis
    (one redis.* for all)."""
    result = rendered(CHART / "ci" / "default-values.yaml")
    social = result.component("ConfigMap", "social")["data"]
    shared = ["STEPBOARD_SOCIAL_CACHE", "STEPBOARD_SOCIAL_CACHE_NAMESPACE",
              "STEPBOARD_SOCIAL_CACHE_TTL_S", "STEPBOARD_REDIS_URL"]
    assert social["STEPBOARD_SOCIAL_CACHE"] == "true"
    for reader in ("rank", "precompute"):
        data = result.component("ConfigMap", reader)["data"]
        assert [data[name] for name in shared] == [social[name] for name in shared], reader


@value_sets
def test_migration_job_is_a_pre_install_and_pre_upgrade_hook(values_file):
    job = rendered(values_file).component("Job", "migration")
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    # Hooks run before the release's own objects exist: nothing of the release referenced.
    container = pod["containers"][0]
    assert "envFrom" not in container
    assert "serviceAccountName" not in pod


@value_sets
def test_notes_show_grpcurl_through_port_forwards(values_file, tmp_path):
    notes = render_notes((values_file,), tmp_path)
    assert "kubectl -n stepboard port-forward svc/sb-stepboard-rank 50053:50053" in notes
    assert "stepboard.v1.Ranking/GetFriendRanking" in notes
    assert "grpc.health.v1.Health/Check" in notes
    assert "{{" not in notes


CONTRADICTIONS = [
    (["consumer.replicas=13"],
     r"consumer\.replicas \(13\) must not exceed kafka\.partitions \(12\)"),
    (["redis.mode=cluster"], r"redis\.mode is cluster but redis\.clusterNodes is empty"),
    (["redis.mode=sentinel"], r"redis\.mode is sentinel but redis\.sentinels is empty"),
    (["redis.url="], r"redis\.mode is standalone but redis\.url is empty"),
    (["redis.tls.enabled=true"], r"redis\.tls\.enabled is true but redis\.url is not a rediss://"),
    (["mysql.tls.certKey=tls.crt"], r"mysql\.tls\.certKey and mysql\.tls\.keyKey go together"),
    (["redis.tls.enabled=true", "redis.url=rediss://r:6379/0", "redis.tls.certKey=c",
      "redis.tls.keyKey=k"],
     r"redis\.tls\.certKey is set but redis\.tls\.existingSecret .* is empty"),
    (["tls.enabled=true"], r"tls\.enabled is true but tls\.existingSecret .* is empty"),
    (["tls.enabled=true", "tls.existingSecret=t", "tls.caKey="],
     r"tls\.servers contains social but tls\.caKey .* is empty"),
    (["auth.existingSecret="], r"auth\.enabled is true but auth\.existingSecret .* is empty"),
    (["auth.appCallers.rank={stepboard.v1.Ranking/*}"],
     r"auth\.appCallers\.rank is a component's name"),
    (["kafka.bootstrap="], r"kafka\.bootstrap is required"),
    (["kafka.securityProtocol=sasl_ssl"],
     r"kafka\.securityProtocol is sasl_ssl but kafka\.sasl\.mechanism is empty"),
    (["kafka.securityProtocol=sasl_ssl", "kafka.sasl.mechanism=PLAIN"],
     r"kafka\.sasl\.existingSecret .* is empty"),
    (["mysql.existingSecret="], r"set mysql\.existingSecret .* or mysql\.shards"),
    (["mysql.shards[0].existingSecret=m", "mysql.shards[0].key=k",
      "mysql.shardMap=0-31:0\\,32-63:1"],
     r'mysql\.shardMap item "32-63:1" points at physical shard 1 but mysql\.shards has only 1'),
    (["server.terminationGracePeriodSeconds=15"],
     r"server\.terminationGracePeriodSeconds \(15\) must exceed .* \(15\)"),
    (["rank.autoscaling.minReplicas=9", "rank.autoscaling.maxReplicas=3"],
     r"rank\.autoscaling\.minReplicas \(9\) exceeds rank\.autoscaling\.maxReplicas \(3\)"),
    (["networkPolicy.enabled=true"],
     r"networkPolicy\.enabled is true but neither networkPolicy\.clientNamespaces nor"),
    (["metrics.enabled=false", "metrics.serviceMonitor.enabled=true"],
     r"metrics\.serviceMonitor\.enabled needs metrics\.enabled"),
    (["precompute.maxAgeSeconds=30"],
     r"precompute\.maxAgeSeconds \(30\) must be at least precompute\.intervalSeconds \(60\)"),
    (["validation.lateDays=3"],
     r"validation\.lateDays \(3\) must be below board\.retentionDays \(3\)"),
    (["rank.liveRankingMaxUsers=5000"],
     r"rank\.liveRankingMaxUsers \(5000\) must exceed precompute\.hotFriendsThreshold"),
]


@pytest.mark.parametrize(("sets", "message"), CONTRADICTIONS, ids=lambda x: str(x))
def test_contradictory_values_fail_rendering_with_a_clear_message(sets, message):
    done = template(sets=tuple(sets))
    assert done.returncode != 0, f"rendered although {sets} contradict each other"
    assert "stepboard: invalid values:" in done.stderr
    assert re.search(message, done.stderr), done.stderr


def test_all_contradictions_are_reported_at_once():
    done = template(sets=("consumer.replicas=99", "redis.mode=cluster", "auth.existingSecret="))
    assert done.returncode != 0
    assert done.stderr.count("\n  - ") == 3, done.stderr


@pytest.mark.parametrize(
    ("sets", "where"),
    [
        (["redis.mode=memcached"], "/redis/mode"),
        (["consumer.replicas=three"], "/consumer/replicas"),
        (["containerSecurityContext.readOnlyRootFilesystem=false"],
         "/containerSecurityContext/readOnlyRootFilesystem"),
        (["kafka.partitons=3"], "partitons"),
        (["redis.clusterNodes={redis-0}", "redis.mode=cluster"], "/redis/clusterNodes/0"),
        (["image.digest=latest"], "/image/digest"),
        (["rank.podLabels.tier=1"], "/rank/podLabels/tier"),
        (["helmTest.caller=no callers"], "/helmTest/caller"),
    ],
)
def test_values_schema_rejects_bad_types_and_unknown_keys(sets, where):
    done = template(sets=tuple(sets))
    assert done.returncode != 0
    assert where in done.stderr, done.stderr


def test_render_helper_raises_on_failure():
    with pytest.raises(HelmError, match=r"kafka\.partitions"):
        render(sets=("consumer.replicas=50",))


# --- values.yaml documentation and schema coverage -------------------------------------

def _schema():
    return json.loads((CHART / "values.schema.json").read_text())


def _documented_keys(schema, values, path=()):
    """Paths of values.yaml keys that the schema describes field by field."""
    props = schema.get("properties")
    if not props or "$ref" in schema or schema.get("additionalProperties") is not False:
        return
    for key in values:
        assert key in props, f"{'.'.join((*path, key))} is in values.yaml but not in the schema"
        yield (*path, key)
        if isinstance(values[key], dict):
            yield from _documented_keys(props[key], values[key], (*path, key))


def test_every_value_is_in_the_schema_and_documented():
    values_text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(values_text)
    schema = _schema()
    keys = list(_documented_keys(schema, values))
    assert len(keys) > 100
    lines = values_text.splitlines()
    undocumented = []
    for path in keys:
        index = _line_of(lines, path)
        previous = next(
            (line for line in reversed(lines[:index]) if line.strip()), ""
        ).strip()
        if not previous.startswith("#"):
            undocumented.append(".".join(path))
    assert not undocumented, f"values without a comment above them: {undocumented}"


def test_every_schema_property_has_a_default_in_values():
    def walk(schema, values, path=()):
        for key, sub in schema.get("properties", {}).items():
            if key == "global" or "const" in sub:
                continue
            assert key in values, f"{'.'.join((*path, key))} is in the schema, not in values.yaml"
            if sub.get("type") == "object" and "properties" in sub:
                walk(sub, values[key], (*path, key))

    walk(_schema(), yaml.safe_load((CHART / "values.yaml").read_text()))


def _line_of(lines, path):
    """Index of the line defining ``path`` in values.yaml (keys in document order)."""
    start = 0
    for depth, key in enumerate(path):
        pattern = re.compile(rf"^{' ' * (2 * depth)}{re.escape(key)}:")
        start = next(i for i in range(start, len(lines)) if pattern.match(lines[i]))
    return start


# --- the container image ---------------------------------------------------------------

def _dockerfile():
    """Instructions of the Dockerfile as (instruction, arguments), continuations joined."""
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _stages():
    stages = []
    for word, rest in _dockerfile():
        if word == "FROM":
            stages.append([(word, rest)])
        elif stages:
            stages[-1].append((word, rest))
    return stages


def _with_arg_defaults(text):
    """``text`` with each ``${NAME}`` replaced by the Dockerfile's ``ARG NAME=`` default."""
    defaults = dict(
        rest.split("=", 1) for word, rest in _dockerfile() if word == "ARG" and "=" in rest
    )
    return re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], text)


def _args(rest):
    if rest.startswith("["):
        return json.loads(rest)
    return [a for a in rest.split() if not a.startswith("--")]


def _dockerignore():
    patterns = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        patterns.append((negate, re.compile(f"^{regex}$")))
    return patterns


def _ignored(relative: str, patterns) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents wins."""
    parts = relative.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    ignored = False
    for negate, regex in patterns:
        if any(regex.match(c) for c in candidates):
            ignored = not negate
    return ignored


def _copied_files():
    """(source path, destination path in /src) of every file the build stage COPYs."""
    patterns = _dockerignore()
    copied = []
    for word, rest in _stages()[0]:
        if word != "COPY":
            continue
        *sources, dest = _args(rest)
        for source in sources:
            path = ROOT / source
            assert path.exists(), f"COPY {source}: missing from the build context"
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
            for file in files:
                relative = file.relative_to(ROOT).as_posix()
                if _ignored(relative, patterns):
                    continue
                inner = file.relative_to(path).as_posix() if path.is_dir() else file.name
                target = dest.rstrip("/") + "/" + inner if dest.endswith("/") or path.is_dir() \
                    else dest
                copied.append((file, target.removeprefix("./")))
    return copied


def test_dockerfile_copy_sources_exist_and_are_not_dockerignored():
    patterns = _dockerignore()
    for stage in _stages():
        for word, rest in stage:
            if word == "COPY" and "--from=" not in rest:
                for source in _args(rest)[:-1]:
                    assert (ROOT / source).exists(), f"COPY {source}: missing"
                    assert not _ignored(source.strip("/"), patterns), f"{source} is dockerignored"
    assert _ignored("tests/integration/test_deploy.py", patterns)
    assert _ignored(".venv/bin/python", patterns)
    assert _ignored("common/__pycache__/config.cpython-311.pyc", patterns)
    assert not _ignored("rank_svc/consumer.py", patterns)


def test_dockerfile_copies_every_package_the_project_installs():
    pyproject = (ROOT / "pyproject.toml").read_text()
    include = re.search(r"include\s*=\s*\[([^\]]*)\]", pyproject).group(1)
    packages = {p.strip().strip('"').rstrip("*") for p in include.split(",") if p.strip()}
    copied_top = {target.split("/")[0] for _, target in _copied_files()}
    assert packages <= copied_top, packages - copied_top
    assert "pyproject.toml" in copied_top


def test_dockerfile_final_stage_is_slim_non_root_and_runs_an_entry_point():
    stages = _stages()
    assert len(stages) >= 2, "multi-stage build"
    final = stages[-1]
    base = _with_arg_defaults(final[0][1].split()[0])
    assert re.fullmatch(r"python:3\.11[\w.-]*-slim[\w.-]*", base), base
    body = " ".join(rest for _, rest in final)
    for tool in ("apt-get install", "gcc", "build-essential", "pip install"):
        assert tool not in body, f"final stage has {tool}"
    users = [rest for word, rest in final if word == "USER"]
    assert users, "final stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "USER must be a numeric non-root id (runAsNonRoot)"
    chart_uid = yaml.safe_load((CHART / "values.yaml").read_text())["podSecurityContext"][
        "runAsUser"
    ]
    assert int(uid) == chart_uid
    entrypoint = next(_args(r) for w, r in reversed(final) if w == "ENTRYPOINT")
    cmd = next(_args(r) for w, r in reversed(final) if w == "CMD")
    command = entrypoint + cmd
    assert command[:2] == ["python", "-m"], command
    assert _runnable(command[2])
    named = re.findall(r"python -m ([\w.]+)", (ROOT / "Dockerfile").read_text())
    named += re.findall(r"\| ([\w.]+)", (ROOT / "Dockerfile").read_text())
    for module in named:
        assert _runnable(module), f"the Dockerfile names {module}, which is not runnable"


def test_the_image_install_step_packages_every_module(tmp_path):
    """``pip install .`` on what the Dockerfile COPYs yields every module of the services
    (built offline here as a wheel from a copy of the filtered build context)."""
    context = tmp_path / "src"
    for source, target in _copied_files():
        (context / target).parent.mkdir(parents=True, exist_ok=True)
        (context / target).write_bytes(source.read_bytes())
    # setuptools >= 70.1 builds wheels by itself; an older one gets an isolated build.
    offline = Version(importlib.metadata.version("setuptools")) >= Version("70.1")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps",
         *(["--no-build-isolation"] if offline else []),
         "--no-cache-dir", "-q", "-w", str(tmp_path / "dist"), str(context)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = (tmp_path / "dist").glob("stepboard-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        target for _, target in _copied_files()
        if target.endswith(".py") and not target.startswith(("tests/", "scripts/"))
    }
    assert expected - names == set(), sorted(expected - names)
    for command, _ in RUNS.values():
        main = _main_module(command[2]).replace(".", "/") + ".py"
        assert main in names, main


def _main_module(module: str) -> str:
    spec = importlib.util.find_spec(module)
    return f"{module}.__main__" if spec.submodule_search_locations else module


def _runnable(module: str) -> bool:
    """Whether ``python -m module`` has something to run."""
    try:
        return importlib.util.find_spec(_main_module(module)) is not None
    except ModuleNotFoundError:
        return False


def _port(container, name):
    return next(p["containerPort"] for p in container["ports"] if p["name"] == name)


# --- the deployment guide ---------------------------------------------------------------

def test_deploy_guide_covers_topics_migration_secrets_and_scaling():
    text = (ROOT / "docs" / "deploy.md").read_text()
    assert re.search(r"kubectl (-n \S+ )?create secret generic", text)
    for needed in ("kafka-topics", "--partitions", "social_svc migrate",
                   "helm upgrade --install", "GetFriendRanking", "consumer.replicas",
                   "kafka.partitions", "board.shards", "HorizontalPodAutoscaler",
                   "precompute"):
        assert needed in text, f"docs/deploy.md does not mention {needed}"
    for path in re.findall(r"helm/stepboard/ci/[\w.-]+\.yaml", text):
        assert (ROOT / path).is_file(), path
