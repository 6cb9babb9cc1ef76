"""Regenerates the committed stubs under stepboard/v1/ from protos/ (``make protos``)."""

from protogen import ROOT, generate

if __name__ == "__main__":
    for path in generate(ROOT):
        print(path.relative_to(ROOT))
