"""Living documentation: coverage in `promise check`, the `promise docs` site, /ui/docs."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import in_process

from api.app import create_app
from engine.docs import features
from engine.keys import create_key
from engine.settings import Settings
from engine.storage.database import make_engine, session_factory
from rules.loader import load_catalog

with warnings.catch_warnings():  # starlette's note about httpx2; the client works as is
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[1]
PROMISE_IDS = sorted(load_catalog(ROOT / "promises").promises)


def run(*args: str, cwd: Path = ROOT, **env: str) -> in_process.Ran:
    """``promise ARGS`` in ``cwd`` with ``env`` added, run in this process
    (tests/in_process.py): what is tested is what it finds and writes."""
    return in_process.promise(*args, cwd=cwd, env=env)


def copy_catalog(tmp_path: Path) -> Path:
    """promises/ (top level only) and features/ side by side in tmp_path."""
    promises = tmp_path / "promises"
    promises.mkdir()
    for file in (ROOT / "promises").iterdir():
        if file.is_file():
            shutil.copy(file, promises / file.name)
    shutil.copytree(ROOT / "features", tmp_path / "features")
    return promises


def test_every_shipped_promise_has_kept_and_broken_scenarios() -> None:
    result = run("check", "--strict", "promises/")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    catalog = load_catalog(ROOT / "promises")
    assert features.coverage(catalog, ROOT / "promises", ROOT / "features") == []


def test_a_promise_without_a_feature_fails_strict_check_at_its_id_line(tmp_path: Path) -> None:
    copy_catalog(tmp_path)
    (tmp_path / "features" / "callback-2h.feature").unlink()
    lenient = run("check", "promises", cwd=tmp_path)
    assert lenient.returncode == 0
    strict = run("check", "--strict", "promises", cwd=tmp_path)
    assert strict.returncode == 1
    [line] = strict.stdout.splitlines()
    assert line.startswith("promises/callback-2h.yaml:1: warning: promise 'callback-2h' has no ")
    assert "features/callback-2h.feature" in line


def test_a_feature_without_a_broken_scenario_is_a_warning_at_its_feature_line(
    tmp_path: Path,
) -> None:
    copy_catalog(tmp_path)
    feature = tmp_path / "features" / "two-handoffs.feature"
    feature.write_text(feature.read_text().replace("@broken", "@edge"))
    lenient = run("check", "promises", cwd=tmp_path)
    assert lenient.returncode == 0, lenient.stdout
    assert lenient.stdout == (
        "features/two-handoffs.feature:2: warning: the feature of promise 'two-handoffs' has no "
        "@broken scenario: tag a scenario (or its Examples) that shows the promise broken\n"
    )
    assert run("check", "--strict", "promises", cwd=tmp_path).returncode == 1


def test_tags_on_examples_count_and_tags_on_the_feature_do_not(tmp_path: Path) -> None:
    catalog = load_catalog(ROOT / "promises")
    only = {"two-handoffs": catalog.promises["two-handoffs"]}
    small = type(catalog)(promises=only, teams=catalog.teams, calendars=catalog.calendars)
    (tmp_path / "two-handoffs.feature").write_text(
        "@kept @broken\n"
        "Feature: handoffs\n"
        "  Scenario Outline: counted\n"
        "    Given <n> handoffs\n"
        "    @kept\n"
        "    Examples:\n"
        "      | n |\n"
        "      | 2 |\n"
    )
    [problem] = features.coverage(small, ROOT / "promises", tmp_path)
    assert (problem.line, problem.severity) == (2, "warning")
    assert "no @broken scenario" in problem.message


def test_a_catalog_without_features_warns_once_per_promise(tmp_path: Path) -> None:
    promises = copy_catalog(tmp_path)
    shutil.rmtree(tmp_path / "features")
    result = run("check", str(promises), cwd=tmp_path)
    assert result.returncode == 0
    warned = sorted(line.split(":")[0] for line in result.stdout.splitlines())
    assert warned == [f"{promises}/{pid}.yaml" for pid in PROMISE_IDS]
    elsewhere = run("check", str(promises), "--features", str(ROOT / "features"), cwd=tmp_path)
    assert elsewhere.stdout == ""
    by_env = run("check", str(promises), cwd=tmp_path, PROMISE_FEATURES_DIR=str(ROOT / "features"))
    assert by_env.stdout == ""


def test_check_strict_finds_the_features_inside_or_beside_a_catalog_from_anywhere(
    tmp_path: Path,
) -> None:
    (tmp_path / "repo").mkdir()
    promises = copy_catalog(tmp_path / "repo")  # promises/ beside features/, as shipped
    elsewhere = tmp_path / "somewhere"
    elsewhere.mkdir()
    beside = run("check", "--strict", str(promises), cwd=elsewhere)
    assert (beside.returncode, beside.stdout) == (0, "")
    shutil.move(tmp_path / "repo" / "features", promises / "features")  # inside the catalog
    inside = run("check", "--strict", str(promises), cwd=elsewhere)
    assert (inside.returncode, inside.stdout) == (0, "")
    (promises / "features" / "ask-once.feature").unlink()
    missing = run("check", "--strict", str(promises), cwd=elsewhere)
    assert missing.returncode == 1
    assert f"write {promises / 'features' / 'ask-once.feature'}" in missing.stdout


def test_scenarios_are_read_with_the_gherkin_parser() -> None:
    found = features.scenarios(ROOT / "features", "email-reply-1bd")
    assert found is not None
    first = found[0]
    assert (first.keyword, first.title) == (
        "Scenario",
        "An email on Friday afternoon answered on Monday is in time",
    )
    assert "kept" in first.tags
    outline = next(s for s in found if s.keyword == "Scenario Outline")
    assert {"kept", "broken"} <= outline.all_tags
    assert outline.examples[0].header == ("reply at", "verdict")
    assert features.scenarios(ROOT / "features", "no-such-promise") is None


def _results(tmp_path: Path, failed_line: int) -> Path:
    """A cucumber JSON as pytest-bdd writes it: one scenario passed, one failed."""
    step = {"keyword": "Given", "name": "x", "line": 1, "match": {"location": ""}}
    report = [
        {
            "uri": "features/ask-once.feature",
            "elements": [
                {"line": 11, "name": "a", "steps": [{**step, "result": {"status": "passed"}}]},
                {
                    "line": failed_line,
                    "name": "b",
                    "steps": [
                        {**step, "result": {"status": "passed"}},
                        {**step, "result": {"status": "failed", "error_message": "boom <b>"}},
                    ],
                },
            ],
        }
    ]
    path = tmp_path / "cucumber.json"
    path.write_text(json.dumps(report))
    return path


def test_promise_docs_builds_a_site_with_each_scenarios_last_result(tmp_path: Path) -> None:
    ask_once = features.scenarios(ROOT / "features", "ask-once")
    assert ask_once is not None and ask_once[0].line == 11
    results = _results(tmp_path, ask_once[1].line)
    out = tmp_path / "site"
    done = run("docs", "promises", "--out", str(out), "--results", str(results))
    assert done.returncode == 0, done.stderr
    index = (out / "index.html").read_text()
    assert 'href="promises/ask-once.html"' in index
    assert 'href="teams/customer-care.html"' in index
    page = (out / "promises" / "ask-once.html").read_text()
    assert "within 365 days" in page
    assert 'href="../teams/customer-care.html"' in page
    assert 'href="../features/ask-once.feature"' in page
    assert page.count('<h3><span class="status status-passed">') == 1
    assert page.count('<h3><span class="status status-failed">') == 1
    assert "boom &lt;b&gt;" in page  # autoescaped
    assert "not run yet" in page  # the scenarios the results do not mention
    assert "| policy_number" not in page and "<th>given by</th>" in page
    assert (out / "features" / "ask-once.feature").is_file()
    team = (out / "teams" / "customer-care.html").read_text()
    assert 'href="../promises/ask-once.html"' in team
    email = (out / "promises" / "email-reply-1bd.html").read_text()
    assert "Within 8 business hours on the uk-office calendar" in email
    assert "Mon-Fri 09:00-17:30" in email


def test_without_results_the_pages_say_not_run_yet(tmp_path: Path) -> None:
    out = tmp_path / "site"
    done = run("docs", "promises", "--out", str(out), "--results", str(tmp_path / "none.json"))
    assert done.returncode == 0, done.stderr
    assert "not run yet" in done.stdout
    page = (out / "promises" / "two-handoffs.html").read_text()
    assert 'class="status status-passed"' not in page and "not run yet" in page


def test_the_dashboard_serves_the_same_pages_under_ui_docs(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'promise.db'}",
        dir=ROOT / "promises",
        features_dir=ROOT / "features",
        docs_results=_results(tmp_path, 20),
    )
    app = create_app(settings)
    keys = make_engine(settings.database_url)
    viewer = create_key(session_factory(keys), "viewer", ["read"])
    care = create_key(session_factory(keys), "care", ["read"], team="customer-care")
    keys.dispose()
    with TestClient(app) as client:
        assert client.get("/ui/docs", follow_redirects=False).status_code == 303
        client.cookies.set("promise_key", viewer)
        index = client.get("/ui/docs")
        assert index.status_code == 200
        assert 'href="/ui/docs/promises/ask-once"' in index.text
        page = client.get("/ui/docs/promises/ask-once")
        assert page.status_code == 200
        assert 'href="/ui/docs/teams/customer-care"' in page.text
        assert 'class="status status-failed"' in page.text
        assert client.get("/ui/docs/teams/operations").status_code == 200
        feature = client.get("/ui/docs/features/ask-once.feature")
        assert feature.text.startswith("@ask_once @never")
        assert client.get("/ui/docs/promises/nope").status_code == 404
        dashboard = client.get("/ui/promises/ask-once")
        assert 'href="/ui/docs/promises/ask-once"' in dashboard.text
        client.cookies.set("promise_key", care)
        assert "two-handoffs" not in client.get("/ui/docs").text
        assert client.get("/ui/docs/promises/two-handoffs").status_code == 404
        assert client.get("/ui/docs/features/two-handoffs.feature").status_code == 404
