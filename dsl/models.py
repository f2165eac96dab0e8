"""The typed plan: frozen pydantic models, each carrying its source span.

The three instruction families of DESIGN.md (wallet transfer, CEX trade, smart-contract
operation) form one discriminated union; expressions, conditions and the block statements
(atomic, repeat, assert) sit beside them. Numbers are `Decimal`, never float.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from stratplan.dsl.spans import Span

# Comment carriers: a comment on its own line belongs to the item after it (`leading`),
# a comment at the end of an item's line to that item (`trailing`), and comments before a
# closing brace or the end of file to the enclosing block (`end_comments`).
Comments = tuple[str, ...]


class Model(BaseModel):
    """Base of every plan model: frozen, no extra fields; validators built on first use."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


# --- expressions ---------------------------------------------------------------------


class Number(Model):
    """A numeric literal; `value` has its suffix applied (93% -> 0.93), `text` is as written."""

    kind: Literal["number"] = "number"
    value: Decimal
    text: str
    span: Span


class NameRef(Model):
    """A reference to a `let` constant or a loop variable."""

    kind: Literal["name"] = "name"
    name: str
    span: Span


class AssetArg(Model):
    """An asset symbol passed to a state function, as in `balance(wallet, ETH)`."""

    kind: Literal["asset"] = "asset"
    symbol: str
    span: Span


class Call(Model):
    """A state function call: balance, collateral, debt, position, price, health, exposure."""

    kind: Literal["call"] = "call"
    func: str
    args: tuple[Expr, ...]
    span: Span


class Neg(Model):
    """Unary minus."""

    kind: Literal["neg"] = "neg"
    operand: Expr
    span: Span


class BinOp(Model):
    """Arithmetic: + - * /."""

    kind: Literal["binop"] = "binop"
    op: Literal["+", "-", "*", "/"]
    left: Expr
    right: Expr
    span: Span


class Compare(Model):
    """A comparison, the atom of a condition."""

    kind: Literal["compare"] = "compare"
    op: Literal["<", "<=", ">", ">=", "==", "!="]
    left: Expr
    right: Expr
    span: Span


class BoolOp(Model):
    """`and` / `or` of two conditions."""

    kind: Literal["boolop"] = "boolop"
    op: Literal["and", "or"]
    left: Expr
    right: Expr
    span: Span


class Not(Model):
    """`not` of a condition."""

    kind: Literal["not"] = "not"
    operand: Expr
    span: Span


Expr = Annotated[
    Union[Number, NameRef, AssetArg, Call, Neg, BinOp, Compare, BoolOp, Not],
    Field(discriminator="kind"),
]
CONDITION_KINDS = frozenset({"compare", "boolop", "not"})


class AllAmount(Model):
    """`all`: the whole balance the instruction draws from."""

    kind: Literal["all"] = "all"
    span: Span


class MaxAmount(Model):
    """`max`: for borrow, the most the lending venue's LTV allows."""

    kind: Literal["max"] = "max"
    span: Span


Amount = Annotated[
    Union[Number, NameRef, AssetArg, Call, Neg, BinOp, Compare, BoolOp, Not, AllAmount, MaxAmount],
    Field(discriminator="kind"),
]


# --- statements ----------------------------------------------------------------------


class Node(Model):
    """Anything that stands on its own line(s) and may carry comments."""

    span: Span
    leading: Comments = ()
    trailing: str | None = None


ContractOperation = Literal[
    "stake", "unstake", "supply", "withdraw", "borrow", "repay", "swap",
    "wrap", "unwrap", "flash_borrow", "flash_repay",
]


class WalletTransferInstruction(Node):
    """`transfer A T from V1 to V2`."""

    kind: Literal["wallet_transfer"] = "wallet_transfer"
    amount: Amount
    token: str
    source_venue: str
    target_venue: str


class CEXTradeInstruction(Node):
    """`spot|perp buy|sell A B/Q on V [limit P] [leverage Nx]`."""

    kind: Literal["cex_trade"] = "cex_trade"
    market: Literal["spot", "perp"]
    side: Literal["buy", "sell"]
    amount: Amount
    base: str
    quote: str
    venue: str
    limit: Expr | None = None
    leverage: Number | None = None

    @property
    def pair(self) -> str:
        """The market symbol as written: BASE/QUOTE."""
        return f"{self.base}/{self.quote}"


class SmartContractInstruction(Node):
    """A contract operation: stake, supply, borrow, swap, flash borrow, ..."""

    kind: Literal["contract"] = "contract"
    operation: ContractOperation
    amount: Amount
    token_in: str
    token_out: str | None = None
    venue: str | None = None
    slippage: Expr | None = None


Instruction = Annotated[
    Union[WalletTransferInstruction, CEXTradeInstruction, SmartContractInstruction],
    Field(discriminator="kind"),
]


class Block(Node):
    """A node with a body in braces."""

    end_comments: Comments = ()


class AtomicBlock(Block):
    """`atomic NAME [via VENUE] { ... }`: one on-chain transaction."""

    kind: Literal["atomic"] = "atomic"
    name: str
    via: str | None = None
    body: tuple[Statement, ...] = ()


class Repeat(Block):
    """`repeat N [as i] { ... }`."""

    kind: Literal["repeat"] = "repeat"
    count: Expr
    var: str | None = None
    body: tuple[Statement, ...] = ()


class Assert(Node):
    """`assert CONDITION [else "message"]`."""

    kind: Literal["assert"] = "assert"
    condition: Expr
    message: str | None = None


Statement = Annotated[
    Union[WalletTransferInstruction, CEXTradeInstruction, SmartContractInstruction,
          AtomicBlock, Repeat, Assert],
    Field(discriminator="kind"),
]


class Phase(Block):
    """`phase NAME [after A, B] { ... }`."""

    name: str
    after: tuple[str, ...] = ()
    body: tuple[Statement, ...] = ()


class MarketRef(Node):
    """`use market "path.yaml"`."""

    path: str


class SeriesRef(Node):
    """`use series "path.csv"` (v2): prices, funding and rates over time."""

    path: str


DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


class Duration(Model):
    """A duration literal (`30s`, `15m`, `8h`, `1d`, `2w`): `value` in units as written."""

    value: Decimal
    unit: Literal["s", "m", "h", "d", "w"]
    text: str
    span: Span

    @property
    def seconds(self) -> Decimal:
        """The duration in seconds."""
        return self.value * DURATION_SECONDS[self.unit]


class Trigger(Block):
    """`trigger NAME every D { ... }` or `trigger NAME when C [cooldown D] { ... }` (v2)."""

    kind: Literal["trigger"] = "trigger"
    name: str
    every: Duration | None = None
    when: Expr | None = None
    cooldown: Duration | None = None
    body: tuple[Statement, ...] = ()

    def as_phase(self) -> Phase:
        """The body as a phase named after the trigger: a firing runs it like one."""
        return Phase(name=self.name, body=self.body, span=self.span)


class HoldingAmount(Model):
    """One `AMOUNT ASSET` of a holdings entry."""

    amount: Number
    asset: str
    span: Span


class HoldingEntry(Node):
    """`VENUE: AMOUNT ASSET, ...`."""

    venue: str
    amounts: tuple[HoldingAmount, ...]


class Holdings(Block):
    """`holdings { ... }`: starting balances."""

    entries: tuple[HoldingEntry, ...] = ()


class Let(Node):
    """`let NAME = EXPR`."""

    name: str
    value: Expr


class Setting(Node):
    """`set OPTION = EXPR`."""

    name: str
    value: Expr


class Plan(Block):
    """A whole plan file. `end_comments` are the comments after the last phase."""

    name: str
    description: str | None = None
    market: MarketRef | None = None
    series: SeriesRef | None = None
    holdings: Holdings | None = None
    lets: tuple[Let, ...] = ()
    sets: tuple[Setting, ...] = ()
    phases: tuple[Phase, ...] = ()
    triggers: tuple[Trigger, ...] = ()


# No `model_rebuild()` here: the models are built lazily (`defer_build`), on their first
# validation, when every forward reference is defined. The parser builds them with
# `trusted()`, so a lint never pays pydantic's schema build for them (issue 17).

INSTRUCTION_TYPES = (WalletTransferInstruction, CEXTradeInstruction, SmartContractInstruction)
AnyInstruction = WalletTransferInstruction | CEXTradeInstruction | SmartContractInstruction
# The `kind` of each instruction class: cheaper to test than isinstance on pydantic
# classes, which goes through ABCMeta.
INSTRUCTION_KINDS = frozenset(cls.model_fields["kind"].default for cls in INSTRUCTION_TYPES)
AnyStatement = AnyInstruction | AtomicBlock | Repeat | Assert
AnyExpr = Number | NameRef | AssetArg | Call | Neg | BinOp | Compare | BoolOp | Not
AnyAmount = AnyExpr | AllAmount | MaxAmount


def without_spans(model: BaseModel) -> Any:
    """The model as plain data with every `span` left out, to compare plans by meaning."""
    return _strip(model.model_dump(mode="python"))


def _strip(data: Any) -> Any:
    # Plans have bounded depth (the parser enforces nesting limits), so recursion is safe.
    if isinstance(data, dict):
        return {key: _strip(value) for key, value in data.items() if key != "span"}
    if isinstance(data, (list, tuple)):
        return [_strip(item) for item in data]
    return data
