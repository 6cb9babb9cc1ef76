"""The dependency pins agree with pyproject.toml and with the committed gRPC stubs.

``make up`` and CI install requirements-dev.lock and the image installs requirements.lock,
never pyproject.toml's ranges: a dependency changed in pyproject.toml without ``make lock``
fails here instead of silently installing something else. Pure file checks, no stack.
"""

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.stack import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
RUNTIME = [Requirement(r) for r in PROJECT["dependencies"]]
EXTRAS = [Requirement(r) for extra in ("dev", "bench")
          for r in PROJECT["optional-dependencies"][extra]]
STUBS = ROOT / "stepboard" / "v1"
CLIENT = [Requirement(r) for r in tomllib.loads(
    (ROOT / "clients" / "python" / "pyproject.toml").read_text())["project"]["dependencies"]]


def lock_pins(name: str) -> dict[str, list[Requirement]]:
    """Pins of a lock file by canonical name (several when markers split one package).

    Asserts that each is an exact ``==`` pin followed by its ``--hash`` lines, which is what
    lets pip install the file in hash-checking mode.
    """
    lines = (ROOT / name).read_text().splitlines()
    pins: dict[str, list[Requirement]] = {}
    for i, line in enumerate(lines):
        if not line or line[0].isspace() or line.startswith("#"):
            continue
        pin = Requirement(line.removesuffix("\\").strip())
        (spec,) = pin.specifier
        assert spec.operator == "==", f"{name}: {line} is not an exact pin"
        assert lines[i + 1].strip().startswith("--hash=sha256:"), f"{name}: {line} has no hash"
        pins.setdefault(canonicalize_name(pin.name), []).append(pin)
    return pins


def pinned_version(pin: Requirement) -> Version:
    """The version of an exact ``name==version`` pin."""
    (spec,) = pin.specifier
    return Version(spec.version)


def assert_pinned_within(pins: dict[str, list[Requirement]], wanted: list[Requirement],
                         lock: str) -> None:
    """Every requirement of ``wanted`` has a pin in ``pins``, each inside its specifier."""
    for req in wanted:
        found = pins.get(canonicalize_name(req.name))
        assert found, f"{req.name} is not pinned in {lock}: run `make lock`"
        for pin in found:
            assert req.specifier.contains(pinned_version(pin), prereleases=True), (
                f"{lock} pins {pin} outside pyproject.toml's {req}: run `make lock`"
            )


def test_dev_lock_pins_every_dependency_within_pyproject_ranges():
    assert_pinned_within(lock_pins("requirements-dev.lock"), RUNTIME + EXTRAS,
                         "requirements-dev.lock")


def test_runtime_lock_pins_runtime_dependencies_at_the_tested_versions():
    """The image gets the runtime dependencies only, at the versions the tests ran with."""
    runtime, dev = lock_pins("requirements.lock"), lock_pins("requirements-dev.lock")
    assert_pinned_within(runtime, RUNTIME, "requirements.lock")
    for name, pins in runtime.items():
        assert {str(p) for p in pins} <= {str(p) for p in dev.get(name, [])}, (
            f"requirements.lock pins {name} unlike requirements-dev.lock: run `make lock`"
        )
    runtime_names = {canonicalize_name(r.name) for r in RUNTIME}
    for req in EXTRAS:
        name = canonicalize_name(req.name)
        assert name in runtime_names or name not in runtime, f"the image would get {name}"


def stub_floors() -> dict[str, Version]:
    """Lowest grpcio and protobuf the committed stubs accept, read from their own checks."""
    grpc = {Version(v) for path in STUBS.glob("*_pb2_grpc.py") for v in
            re.findall(r"^GRPC_GENERATED_VERSION = '([\d.]+)'", path.read_text(), re.M)}
    protobuf = {Version(".".join(m)) for path in STUBS.glob("*_pb2.py") for m in re.findall(
        r"ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,"
        r"\s*(\d+),\s*(\d+),\s*(\d+),", path.read_text())}
    assert len(grpc) == 1 and len(protobuf) == 1, (grpc, protobuf)
    return {"grpcio": grpc.pop(), "protobuf": protobuf.pop()}


@pytest.mark.parametrize("name, stub", [
    ("grpcio", "grpcio"),
    ("grpcio-health-checking", "grpcio"),
    ("grpcio-reflection", "grpcio"),
    ("protobuf", "protobuf"),
])
def test_pyproject_floor_is_what_the_stubs_require(name: str, stub: str):
    """pyproject.toml admits no version the committed stubs refuse at import."""
    (req,) = [r for r in RUNTIME if canonicalize_name(r.name) == name]
    assert_floor(req, stub_floors()[stub])


def test_client_wheel_needs_only_grpcio_and_protobuf_at_the_stubs_floors():
    """The client wheel (clients/python) ships the same stubs, so the same floors hold."""
    assert sorted(canonicalize_name(r.name) for r in CLIENT) == ["grpcio", "protobuf"]
    for req in CLIENT:
        assert_floor(req, stub_floors()[canonicalize_name(req.name)])


def assert_floor(req: Requirement, floor: Version) -> None:
    """``req`` admits ``floor`` and nothing below it."""
    assert req.specifier.contains(floor), f"{req} refuses {floor}, which the stubs need"
    lows = [Version(s.version) for s in req.specifier if s.operator in (">=", "~=", "==")]
    assert lows and max(lows) >= floor, (
        f"{req} admits versions below {floor}, which the stubs refuse at import"
    )
