"""Source positions: 1-based lines and columns, end column exclusive."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Span(BaseModel):
    """Where a piece of source text starts and ends."""

    model_config = ConfigDict(frozen=True)

    line: int
    column: int
    end_line: int
    end_column: int

    @staticmethod
    def join(first: Span, last: Span) -> Span:
        """The span from the start of `first` to the end of `last`."""
        return Span.model_construct(
            line=first.line, column=first.column, end_line=last.end_line, end_column=last.end_column
        )


UNKNOWN_SPAN = Span(line=1, column=1, end_line=1, end_column=1)
