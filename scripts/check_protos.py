"""Fails when the committed stubs under stepboard/v1/ differ from what protos/ generates."""

import sys
import tempfile
from pathlib import Path

from protogen import ROOT, generate


def main() -> int:
    """Generates into a temporary folder and compares file sets and contents."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = {p.relative_to(tmp): p.read_bytes() for p in generate(Path(tmp))}
    committed = {
        p.relative_to(ROOT): p.read_bytes()
        for p in (ROOT / "stepboard").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    stale = sorted(str(p) for p in fresh.keys() | committed.keys()
                   if fresh.get(p) != committed.get(p))
    if stale:
        print("stubs differ from protos/ (run `make protos` and commit):", *stale, sep="\n  ")
        return 1
    print(f"stubs match protos/ ({len(fresh)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
