"""The compiler: golden rulesets, the durable-rules constraints, and real registration."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.evaluation.rules_core import RulesCore
from histories import never_promises
from rules.compiler import (
    GUARD,
    TAG,
    CompiledPromise,
    compile_promise,
    record_pattern,
    record_types,
    type_tags,
    value_kind,
)
from rules.loader import load_catalog
from rules.models import (
    Compare,
    Condition,
    Equals,
    Exists,
    Match,
    Matches,
    NeverPromise,
    Not,
    OneOf,
)
from rules.regex import translate

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
CATALOG = load_catalog(ROOT / "promises")


@pytest.mark.parametrize("promise_id", sorted(CATALOG.promises))
def test_compiled_ruleset_matches_its_golden_file(promise_id: str) -> None:
    """Any change to what a promise compiles to shows up in review as a golden-file diff.

    Regenerate with PROMISE_UPDATE_GOLDEN=1 after checking the change is intended.
    """
    compiled = compile_promise(CATALOG.promises[promise_id])
    text = json.dumps(compiled.rules, indent=2, sort_keys=True) + "\n"
    golden = GOLDEN / f"{promise_id}.json"
    if os.environ.get("PROMISE_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert golden.read_text() == text


def _patterns(compiled: CompiledPromise) -> list[tuple[str, dict[str, Any]]]:
    return [(name, p) for name, rule in compiled.rules.items() for p in rule["all"]]


@pytest.mark.parametrize("promise_id", sorted(CATALOG.promises))
def test_compiled_rules_respect_durable_rules_limits(promise_id: str) -> None:
    assert_within_durable_rules_limits(compile_promise(CATALOG.promises[promise_id]))


@settings(max_examples=100, deadline=None)
@given(never_promises())
def test_never_promises_with_any_condition_respect_durable_rules_limits(
    promise: NeverPromise,
) -> None:
    """One-of lists and ``not`` compile to an ``$or``: the joins must still come first."""
    assert_within_durable_rules_limits(compile_promise(promise))


def assert_within_durable_rules_limits(compiled: CompiledPromise) -> None:
    for name, rule in compiled.rules.items():
        assert len(rule["all"]) <= 2, f"{name}: three-pattern joins can segfault (issue #381)"
        assert rule["run"] == f"{compiled.name}:{name}"
    for name, pattern in _patterns(compiled):
        ((alias, body),) = pattern.items()
        assert not alias.endswith("$not"), f"{name}: no negated patterns"
        terms = body.get("$and", [body])
        assert isinstance(terms[0].get("t"), str), f"{name}.{alias}: needs a positive discriminator"
        joined = [i for i, t in enumerate(terms) if _refers_to_other_alias(t, alias)]
        if joined:
            assert terms[joined[-1]] == {GUARD: {_first_alias(compiled, name): GUARD}}, (
                f"{name}.{alias}: the always-true guard must be the last join"
            )
            groups = [i for i, t in enumerate(terms) if "$or" in t or "$and" in t]
            assert all(i > joined[-1] for i in groups), (
                f"{name}.{alias}: a join after an $or is never tested"
            )


def _refers_to_other_alias(term: Any, alias: str) -> bool:
    """Whether a pattern term reads a field of another alias (a join)."""
    if isinstance(term, dict):
        return any(
            (isinstance(v, str) and k not in ("t", alias) and k.isalpha() and len(k) == 1)
            or _refers_to_other_alias(v, alias)
            for k, v in term.items()
        )
    if isinstance(term, list):
        return any(_refers_to_other_alias(t, alias) for t in term)
    return False


def _first_alias(compiled: CompiledPromise, rule: str) -> str:
    return next(iter(compiled.rules[rule]["all"][0]))


def test_ruleset_name_carries_the_version() -> None:
    promise = CATALOG.promises["ask-once"]
    assert compile_promise(promise).name == f"ask-once@{promise.version}"


def test_every_sample_promise_registers_and_runs_in_durable_rules() -> None:
    core = RulesCore()
    compiled = {pid: compile_promise(p) for pid, p in CATALOG.promises.items()}
    for c in compiled.values():
        core.register(c)

    def rec(n: int, **fields: Any) -> dict[str, Any]:
        """A record fact; each attribute with its kind (``type_tags``), as the engine posts."""
        kinds = {TAG + f: value_kind(v) for f, v in fields.items() if f.startswith("attributes.")}
        return {
            "id": f"r{n}",
            "t": "rec",
            "at": n * 1_000_000,
            "seq": n,
            "scope": "S",
            "sid": "0",
            GUARD: 1,
            **fields,
            **kinds,
        }

    def fired(pid: str, fact: dict[str, Any]) -> set[str]:
        return {f.rule for f in core.assert_fact(compiled[pid].name, fact) or []}

    email = "email-reply-1bd"
    assert fired(email, rec(1, type="message", channel="email", direction="inbound")) == {
        "start",
        "resume",
    }
    assert fired(email, rec(2, type="message", channel="chat", direction="outbound")) == {"stop"}
    assert fired(email, rec(3, type="status", **{"attributes.status": "waiting_on_customer"})) == {
        "pause"
    }
    assert fired(email, rec(4, type="closed", **{"attributes.reason": "spam"})) == {"cancel"}
    assert fired(email, {"id": "d", "t": "due", "at": 10, "sid": "0", GUARD: 1}) == set()
    assert fired(email, {"id": "w", "t": "warn", "at": 5, "sid": "0", GUARD: 1}) == set()
    assert fired(email, {"id": "k1", "t": "clock", "now": 10, "sid": "0", GUARD: 1}) == {"warn"}
    assert fired(email, {"id": "k2", "t": "clock", "now": 11, "sid": "0", GUARD: 1}) == {
        "warn",
        "expire",
    }

    detractor = "detractor-follow-up-48h"
    assert fired(detractor, rec(5, type="survey_response", **{"attributes.nps": 6})) == {"start"}
    assert fired(detractor, rec(6, type="survey_response", **{"attributes.nps": 7})) == set()

    ask = "ask-once"
    item = {"attributes.item": "policy_number"}
    assert fired(ask, rec(7, type="info_provided", **item)) == {"first"}
    asked = rec(8, type="info_requested", direction="outbound", **item)
    assert fired(ask, asked) == {"then", "repeat"}
    other = rec(9, type="info_requested", direction="outbound", **{"attributes.item": "address"})
    assert fired(ask, other) == {"then"}

    handoffs = "two-handoffs"
    assert fired(handoffs, rec(10, type="handoff")) == {"count"}
    for k in (1, 2):
        counted = {
            "id": f"c{k}",
            "t": "counted",
            "k": k,
            "at": k,
            "scope": "S",
            "sid": "0",
            GUARD: 1,
        }
        assert fired(handoffs, counted) == set()
    third = {"id": "c3", "t": "counted", "k": 3, "at": 3, "scope": "S", "sid": "0", GUARD: 1}
    assert fired(handoffs, third) == {"over"}

    for pid in ("callback-2h", "travel-guarantee"):
        start_type = {"callback-2h": "callback_promised", "travel-guarantee": "problem_reported"}
        assert fired(pid, rec(11, type=start_type[pid])) == {"start"}


# --- condition semantics, through the real rules core -------------------------------------------

_CONDITION_CASES: list[tuple[Condition, dict[str, Any], bool]] = [
    (Equals("email"), {"x": "email"}, True),
    (Equals("email"), {"x": "chat"}, False),
    (Equals("email"), {}, False),
    (OneOf(("a", "b")), {"x": "b"}, True),
    (OneOf(("a", "b")), {"x": "c"}, False),
    (Compare("lte", 6), {"x": 6}, True),
    (Compare("lte", 6), {"x": 7}, False),
    (Compare("gt", 6), {"x": 7}, True),
    (Compare("lt", 6), {}, False),
    (Compare("ne", "spam"), {"x": "ham"}, True),
    (Compare("ne", "spam"), {"x": "spam"}, False),
    (Compare("ne", "spam"), {}, False),
    (Exists(True), {"x": 1}, True),
    (Exists(True), {}, False),
    (Exists(False), {}, True),
    (Exists(False), {"x": 1}, False),
    (Not(Equals("claims")), {"x": "sales"}, True),
    (Not(Equals("claims")), {"x": "claims"}, False),
    (Not(Equals("claims")), {}, True),
    (Not(OneOf(("a", "b"))), {"x": "a"}, False),
    (Not(OneOf(("a", "b"))), {"x": "c"}, True),
    (Not(Compare("gte", 3)), {"x": 2}, True),
    (Not(Compare("gte", 3)), {"x": 3}, False),
    (Not(Compare("ne", "a")), {"x": "a"}, True),
    (Not(Exists(True)), {}, True),
    (Not(Not(Equals("a"))), {"x": "a"}, True),
]


@pytest.fixture(scope="module")
def probe() -> Any:
    """Registers one single-condition ruleset per case and tells whether a fact matches."""
    core = RulesCore()
    names: dict[str, str] = {}
    counter = iter(range(1_000_000))

    def matches(field: str, condition: Condition, fields: dict[str, Any]) -> bool:
        """``fields`` holds the value of ``field`` as ``x`` (or not); an attribute's fact
        carries its kind, as the engine's do."""
        rule = record_pattern(Match(((field, condition),)))
        key = json.dumps(rule, sort_keys=True)
        if key not in names:
            name = f"probe{len(names)}"
            core.register(CompiledPromise(name, {"r": {"all": [{"m": rule}], "run": f"{name}:r"}}))
            names[key] = name
        fact = {"id": f"f{next(counter)}", "t": "rec"}
        if "x" in fields and not isinstance(fields["x"], dict | list):
            fact[field] = fields["x"]
        if field.startswith("attributes.") and "x" in fields:
            fact.update(type_tags({field.removeprefix("attributes."): fields["x"]}, (field,)))
        return bool(core.assert_fact(names[key], fact))

    return matches


# Values compare as JSON values do (docs/semantics.md, "Matching"); the core alone would say
# "3" <= 6, 1 == "1", true == 1, and see an object as absent.
_MIXED_CASES: list[tuple[Condition, dict[str, Any], bool]] = [
    (Equals("1"), {"x": 1}, False),
    (Equals(1), {"x": "1"}, False),
    (Equals(1), {"x": True}, False),
    (Equals(True), {"x": True}, True),
    (Equals(1), {"x": 1.0}, True),
    (OneOf(("1", 2)), {"x": 1}, False),
    (OneOf(("1", 2)), {"x": 2}, True),
    (Compare("lte", 6), {"x": "3"}, False),
    (Compare("gte", 6), {"x": "abc"}, False),
    (Compare("ne", "1"), {"x": 1}, True),
    (Compare("ne", 1), {"x": 1}, False),
    (Matches("2.5", translate("2.5")), {"x": 2.5}, False),
    (Exists(True), {"x": {"level": "low"}}, True),
    (Exists(False), {"x": ["a"]}, False),
    (Compare("ne", "low"), {"x": {"level": "low"}}, True),
    (Not(Equals("1")), {"x": 1}, True),
    (Not(Compare("gte", 5)), {"x": "9"}, True),
    (Not(Compare("gte", 5)), {"x": 9}, False),
    (Not(Compare("ne", "1")), {"x": 1}, False),
]


@pytest.mark.parametrize(("condition", "fields", "expected"), _CONDITION_CASES + _MIXED_CASES)
def test_condition_semantics_in_the_rules_core(
    probe: Any, condition: Condition, fields: dict[str, Any], expected: bool
) -> None:
    assert probe("attributes.x", condition, fields) is expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (Equals(1), False),
        (OneOf((1, "1")), True),
        (Compare("lte", 6), False),
        (Compare("ne", 1), True),
        (Not(Compare("gte", 5)), True),
        (Not(Equals(1)), True),
        (Not(Compare("ne", 1)), False),
    ],
)
def test_a_record_field_is_text_to_every_condition(
    probe: Any, condition: Condition, expected: bool
) -> None:
    """A record field (``type``, ``team``, ...) is always text, decided at compile time."""
    assert probe("team", condition, {"x": "1"}) is expected


_PATTERNS = [
    r"re.*",
    r"\d+",
    r"[A-Z]{2}-\d+",
    r"policy_(number|id)",
    r"(?:foo|bar)+",
    r".*refund.*",
    r"\w+",
    r"\s*x",
    r"[a-z]+@[a-z]+\.com",
    r"(?i)abc",
    r"a\.b",
    r"^ab$",
    r"[\w.]+",
    r"100%",
    r"[^x]*",
    r"\D+",
    r"[-a]+",
    r"[a-]+",
    r"x|y",
    r"a{2,3}",
    r"colou?r",
    r"[%.]+",
    r"\(a\)",
    r"a{,2}b",
    r"(ab){1,}",
    r"a{2}",
    r"x{a}",
    r"{}",
    r"a{1,2",
    r"[{}]+",
]


@settings(max_examples=300, deadline=None)
@given(
    pattern=st.sampled_from(_PATTERNS),
    text=st.text(alphabet="abcrexyABC0129_-.%@ ()fo{},", max_size=8),
)
def test_translated_regex_agrees_with_python(probe: Any, pattern: str, text: str) -> None:
    """A `matches` condition means in the rules core what it means in Python (full match)."""
    import re

    expected = re.fullmatch(pattern, text, re.ASCII) is not None
    assert probe("x", Matches(pattern, translate(pattern)), {"x": text}) is expected


@pytest.mark.parametrize("pattern", [r"a\tb", "a\tb", r"[\n ]+", r"x\r?", "\x0b"])
def test_control_characters_in_patterns_are_refused(pattern: str) -> None:
    """The rules core sees them JSON-escaped: a pattern's tab would match a 't' (or, as
    '\\u000b' in a class, a '0'), so they are refused rather than mistranslated."""
    with pytest.raises(ValueError, match="control character"):
        translate(pattern)


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("[a-z]{1,250}", "above 100"),
        (".{200}", "above 100"),
        ("a{65636}", "above 100"),  # the core read it as a{100}
        ("a{0}", "zero times"),  # the core read it as a*
        ("a{,0}", "zero times"),
        ("(?:" * 600 + "a" + ")" * 600, "nested too deeply"),  # Python's re recursed
    ],
)
def test_repetitions_and_nestings_the_core_cannot_hold_are_refused(
    pattern: str, words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        translate(pattern)


def test_whitespace_class_is_the_space(probe: Any) -> None:
    condition = Matches(r"\s*x", translate(r"\s*x"))
    assert probe("x", condition, {"x": "  x"})
    assert not probe("x", condition, {"x": "0x"})  # '[\t\n\v...]' once matched this
    assert not probe("x", condition, {"x": "tx"})


def test_record_types_lists_what_each_sample_ruleset_can_take() -> None:
    types = {pid: record_types(compile_promise(p)) for pid, p in CATALOG.promises.items()}
    assert types["ask-once"] == {"info_provided", "info_requested"}
    assert types["detractor-follow-up-48h"] == {"survey_response", "message", "call", "follow_up"}
    assert types["two-handoffs"] == {"handoff"}


@pytest.mark.parametrize(
    "condition", [Not(Equals("handoff")), Matches("hand.*", translate("hand.*")), Exists(True)]
)
def test_record_types_is_unbounded_when_a_pattern_does_not_pin_the_type(
    condition: Condition,
) -> None:
    promise = dataclasses.replace(
        CATALOG.promises["two-handoffs"], count=Match((("type", condition),))
    )
    assert record_types(compile_promise(promise)) is None
