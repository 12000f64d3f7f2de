"""In CI, the Debian programs the oracle tests use must be installed: without them those tests skip, and a
broken install would pass silently. ``.ci/run`` sets ``CI``; elsewhere this test skips."""

import os
import shutil

import pytest

#: Programs that tests skip without, and the Debian package that gives each (installed by .ci/run).
ORACLE_PROGRAMS = {"promtool": "prometheus", "prometheus-alertmanager": "prometheus-alertmanager",
                   "amtool": "prometheus-alertmanager", "chromium": "chromium"}  # fmt: skip


@pytest.mark.skipif(not os.environ.get("CI"), reason="only under CI, which installs these programs")
@pytest.mark.parametrize("program", sorted(ORACLE_PROGRAMS))
def test_the_oracles_programs_are_installed_in_ci(program):
    assert shutil.which(program), f"{program} missing: .ci/run should have installed {ORACLE_PROGRAMS[program]}"
