"""Quoting what a client sent: a short prefix on one line, at a cost that does not grow with it."""

from __future__ import annotations

import pytest
from modelops_serving.quote import capped, excerpt, name


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("thirty", "'thirty'"),
        ("x" * 1000, "'" + "x" * 39 + "…"),
        ("line\nbreak", "'line\\nbreak'"),
        (True, "True"),
        (None, "None"),
        (1.5, "1.5"),
        (10**60, str(10**60)[:40] + "…"),
        ([1, 2, 3, 4, 5, 6], "[1, 2, 3, 4, ...]"),
        ({"a": [[[["deep"]]]]}, "{'a': [[...]]}"),
    ],
)
def test_an_excerpt_is_the_start_of_the_repr(value: object, expected: str) -> None:
    assert excerpt(value) == expected


def test_an_excerpt_of_a_huge_list_looks_at_what_it_shows_only() -> None:
    class Exploding:
        def __repr__(self) -> str:
            raise AssertionError("only the first items are quoted")

    huge = [1, 2, 3, 4, *[Exploding()] * 1_000_000]
    assert excerpt(huge) == "[1, 2, 3, 4, ...]"


def test_a_name_is_bare_when_printable_and_quoted_when_not() -> None:
    assert name("plan") == "plan"
    assert name("p" * 100) == "p" * 40 + "…"
    assert name("a\r\nb") == "'a\\r\\nb'"


def test_a_whole_message_is_capped_and_kept_on_one_line() -> None:
    message = "Invalid request data type: {'x': '" + "y" * 10_000 + "'}"
    assert capped(message) == message[:300] + "…"
    assert capped("two\nlines") == "two\\nlines"
