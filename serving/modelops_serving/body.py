"""What a request body may be before anything reads it: its size, its nesting, its integers.

- **Size.** `body_limit` derives the most bytes a body may hold from the row limit
  (`max_batch_rows`) and the model's shape, so the two limits say the same thing: the largest
  body is a feedback (each row has the model's inputs, the answer's class scores and a truth),
  at `BYTES_PER_VALUE` bytes per value, plus `OVERHEAD_BYTES` for names and tags. A body over
  it is refused (413) before it is read: a fixed 5 MiB cap let a 2.5 MB body of extra rows
  hold a worker for seconds before its row count was ever checked.
- **Nesting.** The documented messages are at most 6 levels deep; JSON nested deeper than
  `MAX_DEPTH` is refused (400) as soon as it is parsed, before anything else reads it.
  seldon-core handed feedback to protobuf's pure-Python `json_format`, which recursed until it
  failed (a 1.3 KB body nested 600 deep was a 500).
- **Integers.** An integer beyond the largest double cannot become a number the model or
  protobuf can hold (protobuf failed with an OverflowError: a 500); it is refused (400) while
  parsing, before any digit of it is converted.

`loads` is the one JSON parser of every request body (the Flask app's JSON provider uses it,
`modelops_serving.errors`). Standard library only, so the pipeline's tests import it.
"""

from __future__ import annotations

import json
from typing import Any

from modelops_serving.validation import LARGEST_NUMBER, RequestError

BYTES_PER_VALUE = 48
"""Room per JSON value: the longest double (24 characters), a separator, and the indentation
of a body pretty-printed two spaces deep. A compact 1000-row feedback for the default model
takes about 10 bytes per value."""
OVERHEAD_BYTES = 64 * 1024
"""Room for what does not grow with the rows: the braces, the input names, the tags."""
MAX_DEPTH = 32
_LARGEST_DIGITS = len(str(int(LARGEST_NUMBER)))
_CONTAINERS = {list, dict}


def body_limit(max_rows: int, *, inputs: int, classes: int) -> int:
    """The most bytes a body may hold: `max_rows` feedback rows of this model, and overhead."""
    return max_rows * (inputs + classes + 1) * BYTES_PER_VALUE + OVERHEAD_BYTES


def too_large(limit: int, *, max_rows: int) -> str:
    """The 413 message: the limit, where it comes from, and what to do."""
    return (
        f"the request body is over {limit} bytes, the limit for {max_rows} rows "
        "(max_batch_rows): send fewer rows per request, or raise max_batch_rows"
    )


def loads(text: str | bytes) -> Any:
    """Parse a request body, refusing deep nesting and out-of-range integers.

    Raises:
        RequestError: nested deeper than MAX_DEPTH (`too_deeply_nested`), or an integer beyond
            the largest double (`number_too_large`); both 400.
        ValueError: not JSON at all (json.JSONDecodeError), as `json.loads` raises it.
    """
    try:
        value = json.loads(text, parse_int=_integer)
    except RecursionError:
        value = None  # deeper than Python's parser goes: deeper than MAX_DEPTH too
    else:
        if depth(value) <= MAX_DEPTH:
            return value
    raise RequestError(
        f"the body is nested more than {MAX_DEPTH} levels deep: send the documented form",
        reason="too_deeply_nested",
    )


def depth(value: Any) -> int:
    """How deep the arrays and objects of parsed JSON nest, counted down to MAX_DEPTH + 1 at
    most. Level by level, skipping lists and objects that hold none (rows of values): about
    1 ms for a 1000-row feedback."""
    level: list[Any] = [value] if type(value) in _CONTAINERS else []
    deepest = 0
    while level and deepest <= MAX_DEPTH:
        deepest += 1
        inner: list[Any] = []
        for node in level:
            items = node.values() if type(node) is dict else node
            if not _CONTAINERS.isdisjoint(map(type, items)):
                inner.extend(item for item in items if type(item) in _CONTAINERS)
        level = inner
    return deepest


def _integer(digits: str) -> int:
    """An integer literal of the body, refused beyond the largest double before it is
    converted (Python refuses literals over 4,300 digits with a less helpful message)."""
    length = len(digits.lstrip("-"))
    if length <= _LARGEST_DIGITS:
        value = int(digits)
        if abs(value) <= LARGEST_NUMBER:
            return value
    raise RequestError(
        f"the body has an integer of {length} digits, beyond the largest number a request may "
        f"hold ({LARGEST_NUMBER:.4g}): send numbers within range",
        reason="number_too_large",
    )
