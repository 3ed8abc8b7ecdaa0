"""Project-wide pytest setup for the living documentation's results (features/README.md).

pytest-bdd writes the cucumber JSON named by ``--cucumberjson`` (in pyproject's addopts) at
the end of a run; ``promise docs`` shows each scenario's result from it. Here its directory
is made, and a run in which no scenario ran (``pytest tests/test_cli.py``, a collection
error) leaves the previous results in place instead of replacing them with an empty list.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pytest_bdd.cucumber_json import LogBDDCucumberJSON


class _KeepLastResults(LogBDDCucumberJSON):
    """pytest-bdd's reporter, writing only when some scenario ran."""

    def pytest_sessionfinish(self) -> None:
        if self.features:
            Path(self.logfile).parent.mkdir(parents=True, exist_ok=True)
            super().pytest_sessionfinish()

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.features:
            super().pytest_terminal_summary(terminalreporter)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    reporter = getattr(config, "_bddcucumberjson", None)
    if reporter is not None and not isinstance(reporter, _KeepLastResults):
        config.pluginmanager.unregister(reporter)
        keeper = _KeepLastResults(reporter.logfile)
        config._bddcucumberjson = keeper  # type: ignore[attr-defined]
        config.pluginmanager.register(keeper)
