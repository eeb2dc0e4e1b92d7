"""The README's Quick start (issue 21, item 6): exactly two commands, each upgrading the machine's own pip before it
resolves anything (an old pip backtracked for more than 12 minutes on the dev extras), with measured times; CI runs
the second one."""
from __future__ import annotations

import re

from tests.conftest import ROOT


def quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```\n(.*?)```", section, re.S)]


def test_two_commands_that_upgrade_pip_first():
    first, second = quick_start_commands()
    for command in (first, second):
        steps = [s.strip() for s in command.split("&&")]
        assert steps[:3] == ["python3 -m venv .venv", ". .venv/bin/activate", "python -m pip install --upgrade pip"]
    assert "pip install ." in first and "mzc encode" in first and "mzc decode" in first
    assert second.endswith("pip install -e '.[dev]' && python -m pytest")


def test_measured_times_are_stated():
    section = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"first command \d+ s", section) and re.search(r"second command's install \d+ s", section)


def test_ci_runs_the_second_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install --upgrade" in ci and "pip install -e '.[dev]' && python -m pytest" in ci
