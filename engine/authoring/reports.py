"""Reports of a ``promise test`` run for CI systems: JUnit XML (one test case per scenario
run) and Cucumber JSON (the format pytest-bdd writes, which ``promise docs`` reads for each
scenario's last result)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from engine.authoring.run import FeatureResult, ScenarioResult

_CUCUMBER_STATUS = {"passed": "passed", "failed": "failed", "undefined": "undefined"}


def _where(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _failure(scenario: ScenarioResult) -> str:
    return "\n".join(
        f"{_where(scenario.feature)}:{s.step.line}: {s.step.keyword} {s.step.text}\n{s.message}"
        for s in scenario.steps
        if s.status in ("failed", "undefined")
    )


def write_junit(results: list[FeatureResult], path: Path) -> None:
    suites = ET.Element("testsuites", name="promise test")
    for feature in results:
        where = _where(feature.path)
        suite = ET.SubElement(suites, "testsuite", name=where)
        cases = 0
        failures = errors = 0
        if feature.error is not None:
            case = ET.SubElement(suite, "testcase", classname=where, name=feature.path.name)
            case.set("file", where)
            case.set("line", str(feature.line))
            ET.SubElement(
                case, "error", message=feature.error
            ).text = f"{where}:{feature.line}: {feature.error}"
            cases, errors = 1, 1
        for scenario in feature.scenarios:
            cases += 1
            case = ET.SubElement(suite, "testcase", classname=where, name=scenario.name)
            case.set("file", where)
            case.set("line", str(scenario.example_line or scenario.line))
            case.set("time", f"{scenario.seconds:.3f}")
            if scenario.status != "passed":
                failures += 1
                first = next(s for s in scenario.steps if s.status == scenario.status)
                message = f"{scenario.status} step: {first.step.keyword} {first.step.text}"
                ET.SubElement(case, "failure", message=message).text = _failure(scenario)
        suite.set("tests", str(cases))
        suite.set("failures", str(failures))
        suite.set("errors", str(errors))
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def _tags(tags: tuple[str, ...], line: int) -> list[dict[str, Any]]:
    return [{"name": f"@{t}", "line": line} for t in tags]


def write_cucumber(results: list[FeatureResult], path: Path) -> None:
    features = []
    for feature in results:
        elements = []
        for scenario in feature.scenarios:
            steps = []
            for s in scenario.steps:
                result: dict[str, Any] = {
                    "status": _CUCUMBER_STATUS.get(s.status, "skipped"),
                    "duration": int(s.seconds * 1e9),
                }
                if s.message:
                    result["error_message"] = s.message
                steps.append(
                    {"keyword": s.step.keyword, "name": s.step.text, "line": s.step.line}
                    | {"result": result}
                )
            elements.append(
                {
                    "keyword": "Scenario",
                    "id": f"{feature.path.stem};{scenario.example_line or scenario.line}",
                    "name": scenario.name,
                    "line": scenario.line,
                    "type": "scenario",
                    "tags": _tags(scenario.tags, scenario.line),
                    "steps": steps,
                }
            )
        features.append(
            {
                "keyword": "Feature",
                "uri": _where(feature.path),
                "id": feature.path.stem,
                "name": feature.name or feature.path.stem,
                "line": feature.line,
                "description": feature.error or "",
                "tags": _tags(feature.tags, feature.line),
                "elements": elements,
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(features, indent=2, ensure_ascii=False), encoding="utf-8")
