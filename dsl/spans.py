"""Source positions: 1-based lines and columns, end column exclusive."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

M = TypeVar("M", bound=BaseModel)
_DEFAULTS: dict[type, tuple[dict[str, Any], set[str]]] = {}


def trusted(cls: type[M], **values: Any) -> M:
    """A model from values the parser already guarantees, skipping validation.

    The parser builds hundreds of thousands of models for a large plan; this is the
    hot path, several times cheaper than `model_construct`. Every default is immutable.
    """
    cached = _DEFAULTS.get(cls)
    if cached is None:
        cached = _DEFAULTS[cls] = ({name: field.default for name, field in
                                    cls.model_fields.items() if not field.is_required()},
                                   set(cls.model_fields))
    defaults, every_field = cached
    model = cls.__new__(cls)
    object.__setattr__(model, "__dict__", {**defaults, **values} if defaults else values)
    # Frozen models never change their fields-set in place (copies copy it), so one shared
    # set saves an allocation per node.
    object.__setattr__(model, "__pydantic_fields_set__", every_field)
    object.__setattr__(model, "__pydantic_extra__", None)
    object.__setattr__(model, "__pydantic_private__", None)
    return model


class Span(BaseModel):
    """Where a piece of source text starts and ends."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    line: int
    column: int
    end_line: int
    end_column: int

    @staticmethod
    def join(first: Span, last: Span) -> Span:
        """The span from the start of `first` to the end of `last`."""
        return trusted(Span, line=first.line, column=first.column, end_line=last.end_line,
                       end_column=last.end_column)


UNKNOWN_SPAN = trusted(Span, line=1, column=1, end_line=1, end_column=1)  # built lazily


# LANGUAGE.md section 2: a line ends at `\n`, `\r\n` or a lone `\r`, and nowhere else (not
# at the form feed, vertical tab, NEL or U+2028 that `str.splitlines` also splits at).
_LINE_END = re.compile(r"\r\n?|\n")


def split_lines(text: str) -> list[str]:
    """The lines of a text as an editor counts them (like `str.splitlines()`, but only
    `\\n`, `\\r\\n` and a lone `\\r` end a line), so `split_lines(text)[span.line - 1]` is
    the line a span points into."""
    lines = _LINE_END.split(text)
    if not lines[-1]:
        lines.pop()  # a final line end starts no new line
    return lines


def position(text: str, offset: int) -> tuple[int, int]:
    """The 1-based (line, column) of `text[offset]`, lines counted as `split_lines` does."""
    offset = max(0, min(offset, len(text)))
    if offset and text[offset - 1] == "\r" and text[offset:offset + 1] == "\n":
        offset -= 1  # the `\n` of a `\r\n` belongs to the line end it finishes
    before = text[:offset]
    line = before.count("\n") + before.count("\r") - before.count("\r\n") + 1
    start = max(before.rfind("\n"), before.rfind("\r")) + 1
    return line, offset - start + 1
