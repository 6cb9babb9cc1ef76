"""Renders the Helm chart and reads what the rendered pods would see (for test_deploy.py).

``helm`` is the one ``stack/install.sh`` puts in ``$(go env GOPATH)/bin``. The effective
environment of a container is rebuilt the way the kubelet builds it (ConfigMap ``envFrom``,
then ``env`` with ``$(NAME)`` expansion, Secret keys replaced by stand-in values), so it can
be fed to the services' own ``from_env`` readers.
"""

import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from tests.stack import ROOT

CHART = ROOT / "helm" / "stepboard"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
RELEASE = "sb"
NAMESPACE = "stepboard"
# helm built by `go install` carries no cluster version of its own (it assumes 1.20).
KUBE_VERSION = "1.33.0"
SERVERS = ("ingest", "social", "rank")
COMPONENTS = (*SERVERS, "consumer", "precompute", "archive")

# Stand-in values of Secret keys, by the variable they end up in.
SECRET_VALUES = {
    "STEPBOARD_MYSQL_SHARD_DSNS": "mysql://sb:pw@mysql-0:3306/stepboard,mysql://sb:pw@mysql-1:3306/stepboard",
    "STEPBOARD_ARCHIVE_MYSQL_SHARD_DSNS": "mysql://sb:pw@mysql-0:3306/archive",
    "STEPBOARD_REDIS_PASSWORD": "redis-pw",
    "STEPBOARD_KAFKA_SASL_USERNAME": "stepboard",
    "STEPBOARD_KAFKA_SASL_PASSWORD": "kafka-pw",
}
SHARD_DSN = re.compile(r"^MYSQL_SHARD_DSN_(\d+)$")
# Stand-in contents of mounted Secret files, by key.
SECRET_FILES = {"tokens": "app-backend:s3cret-token\nops:other-token\n"}


class HelmError(AssertionError):
    """helm exited non-zero; the message carries its stderr."""


@cache
def go_tool(name: str) -> str:
    """Path of a tool stack/install.sh installs with ``go install`` (helm,
    grpc-health-probe); fails (never skips) if it is missing."""
    go = shutil.which("go")
    if go is None:
        raise AssertionError(f"go is not installed: stack/install.sh needs it to install {name}")
    gopath = subprocess.run(
        [go, "env", "GOPATH"], check=True, capture_output=True, text=True
    ).stdout.strip()
    path = Path(gopath) / "bin" / name
    if not path.is_file():
        raise AssertionError(f"{path} is missing: run `bash stack/install.sh` (make test does)")
    return str(path)


def helm() -> str:
    """Path of the helm that stack/install.sh installs."""
    return go_tool("helm")


def run_helm(*args: str) -> subprocess.CompletedProcess:
    """Runs helm; returns the completed process whatever its exit code."""
    return subprocess.run([helm(), *args], capture_output=True, text=True, timeout=120)


def _value_args(values_files: tuple[Path, ...], sets: tuple[str, ...]) -> list[str]:
    args = []
    for path in values_files:
        args += ["-f", str(path)]
    for item in sets:
        args += ["--set", item]
    return args


def lint(values_file: Path) -> subprocess.CompletedProcess:
    """``helm lint --strict`` with one value set."""
    return run_helm("lint", "--strict", str(CHART), "-f", str(values_file))


def template(
    values_files: tuple[Path, ...] = (), sets: tuple[str, ...] = (), chart: Path = CHART
) -> subprocess.CompletedProcess:
    """``helm template`` with the given value files and ``--set`` items."""
    return run_helm(
        "template", RELEASE, str(chart), "--namespace", NAMESPACE,
        "--kube-version", KUBE_VERSION, *_value_args(values_files, sets),
    )


@cache
def render(values_files: tuple[Path, ...] = (), sets: tuple[str, ...] = ()) -> "Rendered":
    """The objects ``helm template`` renders; raises :class:`HelmError` if it fails."""
    done = template(values_files, sets)
    if done.returncode != 0:
        raise HelmError(done.stderr)
    docs = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    return Rendered(tuple(docs), values(values_files, sets))


@cache
def values(values_files: tuple[Path, ...] = (), sets: tuple[str, ...] = ()) -> dict:
    """The merged values helm renders with: the chart's defaults, the files, then the
    ``--set`` items (plain dotted keys only)."""
    merged = yaml.safe_load((CHART / "values.yaml").read_text())
    for path in values_files:
        merged = _merge(merged, yaml.safe_load(path.read_text()) or {})
    for item in sets:
        key, _, raw = item.partition("=")
        assert re.fullmatch(r"[A-Za-z0-9_.]+", key), f"unsupported --set key {key!r}"
        *parents, leaf = key.split(".")
        node = merged = _merge(merged, {})
        for part in parents:
            node[part] = dict(node.get(part) or {})
            node = node[part]
        node[leaf] = yaml.safe_load(raw) if raw else ""
    return merged


def _merge(base: dict, override: Mapping) -> dict:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def render_notes(values_files: tuple[Path, ...], tmp_path: Path) -> str:
    """NOTES.txt as helm would print it after install (``helm template`` skips NOTES, and
    ``helm install --dry-run`` wants a cluster): a copy of the chart wraps it in a ConfigMap."""
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "NOTES.txt").unlink()
    (chart / "templates" / "_notes_under_test.tpl").write_text(
        '{{- define "test.notes" -}}\n' + notes + "{{- end -}}\n"
    )
    (chart / "templates" / "notes-under-test.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n"
        'data:\n  notes: {{ include "test.notes" . | quote }}\n'
    )
    done = template(values_files, chart=chart)
    if done.returncode != 0:
        raise HelmError(done.stderr)
    for doc in yaml.safe_load_all(done.stdout):
        if doc and doc["metadata"]["name"] == "notes":
            return doc["data"]["notes"]
    raise AssertionError("the NOTES wrapper did not render")


@dataclass(frozen=True)
class Rendered:
    """The rendered objects of one value set, and the values behind them."""

    docs: tuple[dict, ...]
    values: dict

    def of_kind(self, kind: str) -> list[dict]:
        """Every object of ``kind``."""
        return [doc for doc in self.docs if doc["kind"] == kind]

    def get(self, kind: str, name: str) -> dict | None:
        """The object of ``kind`` named ``name``, or None."""
        return next((d for d in self.of_kind(kind) if d["metadata"]["name"] == name), None)

    def component(self, kind: str, component: str) -> dict | None:
        """The object of ``kind`` for one component (by its component label)."""
        found = [
            doc for doc in self.of_kind(kind)
            if doc["metadata"]["labels"].get("app.kubernetes.io/component") == component
        ]
        assert len(found) <= 1, f"several {kind}s for {component}"
        return found[0] if found else None

    def pods(self) -> Iterator[tuple[str, dict]]:
        """(component, pod spec) of every Deployment and Job."""
        for doc in (*self.of_kind("Deployment"), *self.of_kind("Job")):
            component = doc["metadata"]["labels"]["app.kubernetes.io/component"]
            yield component, doc["spec"]["template"]["spec"]

    def pod(self, component: str) -> dict:
        """The pod spec of one component's Deployment, or of the migration Job."""
        kind = "Job" if component == "migration" else "Deployment"
        doc = self.component(kind, component)
        assert doc is not None, f"no {kind} for {component}"
        return doc["spec"]["template"]["spec"]


_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def container_env(rendered: Rendered, pod: dict, files_root: Path) -> dict[str, str]:
    """The environment the kubelet would give the pod's first container.

    Secret keys become stand-in values; paths into mounted Secret volumes are moved under
    ``files_root``, where the mounted files are created with stand-in contents, so readers
    that open them (the bearer-tokens file) find them. A path into no mounted volume, or to
    a key the volume does not project, is left as is (and so fails loudly when opened).
    """
    container = pod["containers"][0]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        name = source["configMapRef"]["name"]
        config_map = rendered.get("ConfigMap", name)
        assert config_map is not None, f"envFrom names ConfigMap {name}, which is not rendered"
        env.update(config_map.get("data", {}))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = _REF.sub(
                lambda m: env.get(m.group(1), m.group(0)), str(item["value"])
            )
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            assert ref["name"] and ref["key"], f"{item['name']}: empty Secret reference"
            shard = SHARD_DSN.match(item["name"])
            env[item["name"]] = (
                f"mysql://sb:pw@mysql-{shard.group(1)}:3306/stepboard" if shard
                else SECRET_VALUES.get(item["name"], "secret-value")
            )
    mounts = _mounted_files(pod, files_root)
    for name, value in env.items():
        for path, local in mounts.items():
            if value == path:
                env[name] = str(local)
    return env


def _mounted_files(pod: dict, files_root: Path) -> dict[str, Path]:
    """Container path → local stand-in file, for every projected Secret key."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    files = {}
    for mount in pod["containers"][0].get("volumeMounts", []):
        secret = volumes[mount["name"]].get("secret")
        if not secret:
            continue
        for item in secret.get("items", []):
            local = files_root / mount["name"] / item["path"]
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_text(SECRET_FILES.get(item["key"], "stand-in\n"))
            files[f"{mount['mountPath']}/{item['path']}"] = local
    return files


class RecordingEnv(Mapping):
    """A read-only environment that records every variable asked for."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self.asked: set[str] = set()

    def get(self, key, default=None):
        """Records ``key``, then answers like ``dict.get``."""
        self.asked.add(key)
        return self._values.get(key, default)

    def __getitem__(self, key):
        self.asked.add(key)
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)
