"""Project-wide pytest setup for the living documentation's results (features/README.md).

pytest-bdd writes the cucumber JSON named by ``--cucumberjson`` (in pyproject's addopts) at
the end of a run; ``promise docs`` shows each scenario's result from it. Here its directory
is made, and a run in which no scenario ran (``pytest tests/test_cli.py``, a collection
error) leaves the previous results in place instead of replacing them with an empty list.
Under pytest-xdist (``make test`` runs ``-n``) the report is written by the controller from
the workers' test reports, which pytest-bdd 9 does not carry across: the hooks at the end
carry each scenario's part along.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pytest_bdd.cucumber_json import LogBDDCucumberJSON
from pytest_bdd.reporting import ReportContext, test_report_context_registry


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


_CONTEXT = "pytest_bdd_context"
"""The key of a serialized test report that holds its scenario's report context."""


@pytest.hookimpl(wrapper=True)
def pytest_report_to_serializable(report: pytest.TestReport) -> Any:
    """A worker's report, with the scenario's part that the reporter reads."""
    data = yield
    context = test_report_context_registry.get(report)
    if data is not None and context is not None:
        data[_CONTEXT] = {"scenario": context.scenario, "name": context.name}
    return data


@pytest.hookimpl(wrapper=True)
def pytest_report_from_serializable(data: dict[str, Any]) -> Any:
    """The controller's copy of a worker's report, with its scenario's part put back."""
    context = data.pop(_CONTEXT, None)
    report = yield
    if report is not None and context is not None:
        test_report_context_registry[report] = ReportContext(**context)
    return report
