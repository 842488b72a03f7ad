"""Model-name patterns of price overrides, compiled by RE2: matching takes time linear in
the name whatever the pattern, so a pattern such as `(a+)+$` cannot stall pricing the way
Python's backtracking `re` would. RE2's syntax is Python's without lookarounds and
backreferences, which a model name never needs."""

from __future__ import annotations

import re
from typing import Protocol

import re2

# RE2 logs every refused pattern to stderr by default; the caller reports it instead.
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False


class ModelPattern(Protocol):
    pattern: str

    def fullmatch(self, text: str) -> object | None: ...


class InvalidModelPattern(ValueError):
    pass


def compile_model_pattern(text: str) -> ModelPattern:
    """The compiled pattern, or InvalidModelPattern saying why RE2 refuses it."""
    try:
        return re2.compile(text, options=_OPTIONS)  # type: ignore[no-any-return]
    except re2.error as error:
        reason = error.args[0] if error.args else "invalid"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise InvalidModelPattern(
            f"not a regular expression tally accepts (RE2 syntax: no lookarounds or "
            f"backreferences): {reason}"
        ) from None


def stored_model_pattern(text: str) -> ModelPattern:
    """A pattern read back from `price_overrides`: one an earlier tally accepted with Python's
    `re` but RE2 refuses still applies, matched as it was then."""
    try:
        return compile_model_pattern(text)
    except InvalidModelPattern:
        return re.compile(text)
