"""The Helm chart, rendered offline with helm, gives each pod only the STEPBOARD_* settings
the registry (common/settings.py) declares for its component."""

import pytest

from common.settings import SERVICES, SETTINGS
from tests.deploy_render import CI_VALUES, container_env, render


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.stem)
def test_the_chart_gives_each_component_only_settings_declared_for_it(values_file, tmp_path):
    result = render((values_file,))
    for component in (*SERVICES, "migration"):
        env = container_env(result, result.pod(component), tmp_path / component)
        reader = "social" if component == "migration" else component
        for name in (n for n in env if n.startswith("STEPBOARD_")):
            declared = SETTINGS[name.removeprefix("STEPBOARD_")]
            assert reader in declared.components, f"{component} is given {name}"
