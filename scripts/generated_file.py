"""Writes a generated file, or with ``--check`` only compares it: the one ``main`` of the
scripts that generate committed files from a source of truth (``gen_config_doc.py``,
``gen_chart_readme.py``), so a check in ``make test`` fails when the two drift apart."""

from pathlib import Path


def write_or_check(
    path: Path, text: str, root: Path, source: str, target: str, argv: list[str], detail: str = ""
) -> int:
    """Writes ``text`` to ``path``, or with ``--check`` in ``argv`` exits 1 (after saying
    to run ``make <target>``) when ``path`` differs from it; ``source`` names what it is
    generated from and ``detail`` is added to the message."""
    name = path.relative_to(root)
    if "--check" in argv:
        if not path.exists() or path.read_text() != text:
            print(f"{name} differs from {source} (run `make {target}` and commit)")
            return 1
        print(f"{name} matches {source}{detail}")
        return 0
    path.write_text(text)
    print(f"wrote {name}{detail}")
    return 0
