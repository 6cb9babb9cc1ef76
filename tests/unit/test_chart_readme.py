"""helm/stepboard/README.md is generated from values.yaml's ``# --`` comments
(scripts/gen_chart_readme.py) and kept in step with them."""

import subprocess
import sys

from scripts.gen_chart_readme import CHART, documented
from tests.stack import ROOT

VALUES = """\
# A section comment, not documentation.
image:
  # -- The repository.
  repository: stepboard
  tag: ""
  # -- A description that goes on
  # over two lines.
  digest: ""

# -- Labels | with a pipe.
podLabels: {team: steps}
"""


def test_the_committed_readme_matches_the_values():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_chart_readme.py"), "--check"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_only_documented_keys_are_listed_with_their_path_type_and_default():
    rows = [(r.key, r.kind, r.default, r.description) for r in documented(VALUES)]
    assert rows == [
        ("image.repository", "string", '"stepboard"', "The repository."),
        ("image.digest", "string", '""', "A description that goes on over two lines."),
        ("podLabels", "object", '{"team": "steps"}', "Labels | with a pipe."),
    ]


def test_every_documented_value_of_the_chart_is_in_the_readme():
    text = (CHART / "values.yaml").read_text()
    rows = documented(text)
    assert len(rows) == text.count("# -- ") > 200
    readme = (CHART / "README.md").read_text()
    assert all(f"| `{row.key}` |" in readme for row in rows)
