"""Text bound for a terminal: what a plan, a market or a file name says is shown, not obeyed.

A plan's strings and comments, a market's names and a file's name can hold characters a
terminal acts on or hides: ESC starting an escape sequence, bidi controls reordering what is
read (U+202A..U+202E, U+2066..U+2069, U+200E/F), other control or format characters, lone
surrogates from a file name that is not UTF-8. Every human-readable output (one-line errors,
`text` and `github` lint output, the text run report, fmt's messages and diff) passes such
text through `shown`, which writes each of those characters as its Python escape (`\\x1b`,
`\\u202e`). JSON and SARIF output stay exact (JSON escapes them anyway).
"""

from __future__ import annotations


def _escape(char: str) -> str:
    return char.encode("unicode_escape").decode("ascii")


def shown(text: str, keep: str = "") -> str:
    """`text` with every non-printable character (`str.isprintable`) written as an escape,
    except the characters in `keep` (a line end, a tab, where the caller wants them)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else _escape(c) for c in text)
