"""Generates the Python stubs for protos/ with grpcio-tools, and the service stubs' types
(``*_pb2_grpc.pyi``) with mypy-protobuf's ``protoc-gen-mypy_grpc`` plugin.

The rule (see README): generated stubs are committed under ``stepboard/v1/`` and must be
byte-for-byte what this module produces from ``protos/``; ``make check-protos`` enforces it.
"""

import sys
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
STUB_PACKAGE = "stepboard/v1"


def proto_files() -> list[Path]:
    """All contract files, in a stable order."""
    return sorted((PROTO_ROOT / STUB_PACKAGE).glob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Writes stubs for every proto into ``out_dir`` and returns the files written."""
    package_dir = out_dir / STUB_PACKAGE
    package_dir.mkdir(parents=True, exist_ok=True)
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    # Installed beside this interpreter by the dev requirements.
    mypy_grpc = Path(sys.executable).parent / "protoc-gen-mypy_grpc"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--plugin=protoc-gen-mypy_grpc={mypy_grpc}",
        f"--mypy_grpc_out={out_dir}",
        *(str(p.relative_to(PROTO_ROOT)) for p in proto_files()),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for init in (out_dir / "stepboard" / "__init__.py", package_dir / "__init__.py"):
        init.write_text('"""Generated from protos/ by scripts/gen_protos.py; do not edit."""\n')
    # PEP 561: type checkers read the .pyi files (messages and service stubs) of an
    # installed package.
    (out_dir / "stepboard" / "py.typed").write_text("")
    return sorted(p for p in (out_dir / "stepboard").rglob("*") if p.is_file())
