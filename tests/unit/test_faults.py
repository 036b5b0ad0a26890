"""limits_app.faults: fault kinds, weighted picks, "fail the first N", content-filter terms."""

from __future__ import annotations

import random
from collections import Counter
from types import MappingProxyType

import pytest

from limits_app.config import FaultProfileConfig
from limits_app.faults import (
    COMPLETION,
    PROMPT,
    ContentFilterTerm,
    FailFirstCounters,
    Fault,
    choose_kind,
    match_terms,
    parse_fault,
    parse_term,
    parse_terms,
    pick_fault,
    prompt_text,
)


def fault_profile(**values: object) -> FaultProfileConfig:
    fields: dict = {"name": "f", "error_rate": 0.0, "kinds": {}, "timeout_ms": 30_000, "fail_first": 0,
                    "content_filter_terms": (), "revision": "r1"}
    fields.update(values)
    fields["kinds"] = MappingProxyType(dict(fields["kinds"]))
    return FaultProfileConfig(**fields)


@pytest.mark.parametrize(("text", "expected"), [
    ("429", Fault("429")), ("500", Fault("500")), ("503", Fault("503")), ("timeout", Fault("timeout")),
    ("reset", Fault("reset")), ("truncate:5", Fault("truncate", 5)), (" Malformed ", Fault("malformed")),
    ("truncate:0", Fault("truncate", 0)),
])
def test_profile_fault_kinds(text: str, expected: Fault) -> None:
    assert parse_fault(text) == expected
    assert parse_fault(text, header=True) == expected


def test_header_only_forms() -> None:
    assert parse_fault("timeout:250", header=True) == Fault("timeout", 250)
    assert parse_fault("none", header=True) == Fault("none")
    with pytest.raises(ValueError, match="takes no ':' argument"):
        parse_fault("timeout:250")
    with pytest.raises(ValueError, match="unknown fault 'none'"):
        parse_fault("none")


@pytest.mark.parametrize(("text", "problem"), [
    ("404", "unknown fault '404'"),
    ("truncate", "needs the number of events"),
    ("truncate:x", "must be a whole number"),
    ("truncate:-1", "must be a whole number"),
    ("reset:3", "takes no ':' argument"),
    ("", "unknown fault"),
])
def test_bad_fault_kinds(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_fault(text, header=True)


def test_kinds_are_drawn_by_weight() -> None:
    rng = random.Random(11)
    drawn = Counter(choose_kind({"500": 3, "503": 1, "truncate:2": 0}, rng).kind for _ in range(8000))
    assert set(drawn) == {"500", "503"}  # weight 0 is never drawn
    assert drawn["500"] / 8000 == pytest.approx(0.75, abs=0.02)
    assert choose_kind({}) == Fault("500")  # a profile that fails without naming kinds fails with 500


def test_error_rate() -> None:
    rng = random.Random(5)
    never = fault_profile(error_rate=0.0, kinds={"503": 1})
    always = fault_profile(error_rate=1.0, kinds={"503": 1})
    some = fault_profile(error_rate=0.2, kinds={"429": 1})
    counters = FailFirstCounters()
    assert all(pick_fault(never, "d", rng, counters) is None for _ in range(200))
    assert all(pick_fault(always, "d", rng, counters) == Fault("503") for _ in range(200))
    failed = sum(pick_fault(some, "d", rng, counters) is not None for _ in range(5000))
    assert failed / 5000 == pytest.approx(0.2, abs=0.02)


def test_fail_first_n_then_succeed_per_deployment() -> None:
    counters = FailFirstCounters()
    profile = fault_profile(fail_first=2, kinds={"503": 1})
    assert [pick_fault(profile, "a", counters=counters) for _ in range(4)] == [Fault("503"), Fault("503"), None, None]
    assert pick_fault(profile, "b", counters=counters) == Fault("503")  # every deployment has its own count
    assert counters.failed_so_far("a", "r1") == 2


def test_a_new_profile_revision_starts_the_count_again() -> None:
    counters = FailFirstCounters()
    first = fault_profile(fail_first=1, revision="2026-01-01T00:00:00")
    assert pick_fault(first, "a", counters=counters) is not None
    assert pick_fault(first, "a", counters=counters) is None
    saved_again = fault_profile(fail_first=1, revision="2026-01-01T00:05:00")
    assert pick_fault(saved_again, "a", counters=counters) is not None
    assert pick_fault(saved_again, "a", counters=counters) is None
    counters.reset("a")
    assert pick_fault(saved_again, "a", counters=counters) is not None


@pytest.mark.parametrize(("raw", "expected"), [
    ("Forbidden Phrase", ContentFilterTerm("forbidden phrase", "violence", PROMPT)),
    ("self_harm: hurt myself", ContentFilterTerm("hurt myself", "self_harm", PROMPT)),
    ("jailbreak:ignore previous instructions", ContentFilterTerm("ignore previous instructions", "jailbreak", PROMPT)),
    ("completion:secret", ContentFilterTerm("secret", "violence", COMPLETION)),
    ("completion:hate:slur", ContentFilterTerm("slur", "hate", COMPLETION)),
    ("note: not a tag", ContentFilterTerm("note: not a tag", "violence", PROMPT)),
])
def test_content_filter_terms(raw: str, expected: ContentFilterTerm) -> None:
    assert parse_term(raw) == expected


@pytest.mark.parametrize(("raw", "problem"), [
    ("", "no text"),
    ("completion:", "no text"),
    ("sexual:  ", "no text"),
    ("completion:jailbreak:x", "prompts only"),
])
def test_bad_content_filter_terms(raw: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_term(raw)


def test_prompt_text_reads_every_prompt_shape() -> None:
    chat = {"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Look at THIS"},
                                     {"type": "image_url", "image_url": {"url": "https://x/forbidden.png"}}]},
    ]}
    text = prompt_text(chat)
    assert "be brief." in text and "look at this" in text
    assert "forbidden" not in text and "user" not in text  # URLs and roles are not prompt text
    assert "two" in prompt_text({"prompt": ["one", "two"]})
    responses = {"instructions": "Obey", "input": [{"role": "user", "content": [{"type": "input_text", "text": "Hi"}]}]}
    assert prompt_text(responses) == "hi\nobey"
    assert prompt_text({"model": "secret", "user": "secret"}) == ""


def test_prompt_terms_win_over_completion_terms() -> None:
    terms = parse_terms(("completion:shared words", "shared"))
    assert match_terms(terms, "some shared words here").target == PROMPT
    assert match_terms(terms, "nothing to see") is None
    only_completion = parse_terms(("completion:self_harm:shared words",))
    assert match_terms(only_completion, "some shared words") == ContentFilterTerm("shared words", "self_harm",
                                                                                   COMPLETION)


def test_values_written_around_validation_are_skipped_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    # Admin, the API and the config file refuse these; a row written some other way must not break the data plane.
    assert parse_terms(("completion:", "fine term")) == (ContentFilterTerm("fine term", "violence", PROMPT),)
    assert choose_kind({"teapot": 5, "503": 1}) == Fault("503")
    assert choose_kind({"teapot": 5}) == Fault("500")
    assert "ignoring the fault kind 'teapot'" in caplog.text
