"""Syntax errors in a user's words: what was expected, after what, and what was found."""

from __future__ import annotations

from lark import Token

# Terminal names as a user would say them.
WORDS = {
    "NAME": "a name", "ASSET": "an asset symbol (like ETH)", "NUMBER": "a number",
    "STRING": "a quoted string", "$END": "end of file", "ARROW": '"->"',
    "LBRACE": '"{"', "RBRACE": '"}"', "LPAR": '"("', "RPAR": '")"', "COMMA": '","',
    "COLON": '":"', "EQUAL": '"="', "SLASH": '"/"', "PLUS": '"+"', "MINUS": '"-"',
    "STAR": '"*"', "LESSTHAN": '"<"', "MORETHAN": '">"',
}
STATEMENTS = {"TRANSFER", "SPOT", "PERP", "STAKE", "UNSTAKE", "SUPPLY", "WITHDRAW", "BORROW",
              "REPAY", "SWAP", "WRAP", "UNWRAP", "FLASH", "ATOMIC", "REPEAT", "ASSERT"}
# Tokens that begin the next construct: when one of them is unexpected at the start of a
# line, the line before it is missing something.
STARTERS = STATEMENTS | {"RBRACE", "PHASE", "LET", "SET", "HOLDINGS", "USE", "$END"}
EXPRESSION_START = {"NUMBER", "NAME", "LPAR", "MINUS"}
OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH", "LESSTHAN", "MORETHAN", "AND", "OR",
             "__ANON_0", "__ANON_1", "__ANON_2", "__ANON_3", "__ANON_4", "__ANON_5"}
# The role of a name after a keyword, for "after the source venue" style messages.
ROLE_AFTER = {
    ("TRANSFER", "FROM"): "the source venue", ("TRANSFER", "TO"): "the target venue",
    "FROM": "the venue", "TO": "the venue", "ON": "the venue", "VIA": "the executor venue",
    "PHASE": "the phase name", "ATOMIC": "the block name", "PLAN": "the plan name",
    "LET": "the constant's name", "SET": "the option's name", "AS": "the loop variable",
    "AFTER": "the phase name",
}


def _word(terminal: str) -> str:
    if terminal in WORDS:
        return WORDS[terminal]
    if terminal.isupper() and terminal.isalpha():
        return f'"{terminal.lower()}"'
    return "an operator"


def describe_expected(expected: set[str]) -> str:
    """A short phrase for a set of acceptable terminals."""
    wanted = set(expected) - {"COMMENT", "WS"}
    parts: list[str] = []
    if STATEMENTS <= wanted:
        parts.append("a statement (an instruction, atomic, repeat or assert)")
        wanted -= STATEMENTS
    if EXPRESSION_START <= wanted:
        parts.append("a number or expression")
        wanted -= EXPRESSION_START | {"NOT", "ALL", "MAX"}
    if parts or wanted - OPERATORS:
        wanted -= OPERATORS
    parts += sorted(_word(t) for t in wanted)
    if not parts:
        return "something else"
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def describe_previous(previous: list[Token]) -> str:
    """'after the source venue', 'after "from"', or 'at the start of the file'."""
    if not previous:
        return "at the start of the file"
    last = previous[-1]
    keywords = [t.type for t in previous[:-1] if t.type.isupper() and t.type.isalpha()
                and t.type not in ("NAME", "ASSET", "NUMBER", "STRING")]
    if last.type == "NAME":
        before = keywords[-1] if keywords else None
        statement = next((t.type for t in reversed(previous) if t.type in STATEMENTS), None)
        role = ROLE_AFTER.get((statement or "", before or "")) or ROLE_AFTER.get(before or "")
        return f"after {role}" if role else f'after "{last.value}"'
    if last.type == "NUMBER":
        return "after the amount"
    if last.type == "ASSET":
        return f"after the asset {last.value}"
    if last.type == "STRING":
        return "after the string"
    return f'after "{last.value}"'


def syntax_message(expected: set[str], previous: list[Token], found: str) -> tuple[str, str | None]:
    """The SP100 message and its help line."""
    if found.startswith("unexpected character"):
        message = f"{found} {describe_previous(previous)}"
        if 0 < len(expected) <= 3:
            message += f" (expected {describe_expected(expected)})"
        return message, "remove the character or put it in a comment (# ...)"
    message = f"expected {describe_expected(expected)} {describe_previous(previous)}, found {found}"
    help_text = None
    if "TO" in expected and previous and previous[-1].type == "NAME":
        help_text = "a transfer reads: transfer AMOUNT ASSET from VENUE to VENUE"
    elif "RBRACE" in expected and found == "end of file":
        help_text = "a block opened with { is not closed"
    return message, help_text


# --- specific messages for common slips, each with what to write instead ------------------

NAME_PATTERN = "[a-z_][a-z0-9_]*"
# What a name is, by the keyword just before it.
NAME_ROLES = {
    "PLAN": "plan", "PHASE": "phase", "AFTER": "phase", "TRIGGER": "trigger",
    "ATOMIC": "atomic block", "LET": "let", "SET": "option", "AS": "loop variable",
    "FROM": "venue", "TO": "venue", "ON": "venue", "VIA": "venue",
}


def name_role(previous: list[Token]) -> str | None:
    """What kind of name belongs after these tokens (`phase`, `venue`, ...), or None when
    the place is not one that only a name can fill."""
    if not previous:
        return None
    kinds = [t.type for t in previous]
    last = kinds[-1]
    if last in NAME_ROLES:
        return NAME_ROLES[last]
    if last == "COMMA":  # `after a, b, C`
        for kind in reversed(kinds[:-1]):
            if kind not in ("NAME", "COMMA"):
                return "phase" if kind == "AFTER" else None
        return None
    if last in ("LBRACE", "ASSET") and "HOLDINGS" in kinds and \
            "RBRACE" not in kinds[kinds.index("HOLDINGS"):]:
        return "venue"  # `holdings { Wallet: ... }`
    return None


def lowercase_name_message(role: str, word: str) -> tuple[str, str]:
    """SP100 for a name written with capitals (`phase Hedge`), and its help line."""
    return (f"{role} names are lowercase: `{word}` is not a name (names match "
            f"{NAME_PATTERN})", f"write `{word.lower()}`")


def glued_number_message(number: str, asset: str) -> tuple[str, str]:
    """SP100 for an amount written against its asset (`20ETH`)."""
    return (f"a space is missing between the number `{number}` and the asset `{asset}`",
            f"write `{number} {asset}`")


def underscore_message(literal: str) -> tuple[str, str]:
    """SP100 for a misplaced `_` in a number (`1__0`, `10_`)."""
    return (f"misplaced `_` in the number `{literal}`: underscores go between digits, one "
            "at a time", "write 40_000, not 40__000 or 40_000_")


def non_ascii_digit_message(char: str, name: str) -> tuple[str, str]:
    """SP100 for a digit that is not one of the ASCII 0-9 (a Bengali or a fullwidth one)."""
    return (f"unexpected character {char!r} ({name}): numbers are written with the ASCII "
            "digits 0-9 only", "retype the number with the digits 0-9")
