"""The typed plan: frozen, slotted dataclasses, each carrying its source span.

The three instruction families of DESIGN.md (wallet transfer, CEX trade, smart-contract
operation) form one discriminated union; expressions, conditions and the block statements
(atomic, repeat, assert) sit beside them. Numbers are `Decimal`, never float.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import MISSING, Field, FrozenInstanceError
from dataclasses import dataclass as std_dataclass
from dataclasses import fields as dataclass_fields
from decimal import Decimal
from inspect import Parameter, Signature
from typing import (
    Annotated,
    Any,
    ClassVar,
    Literal,
    Self,
    TypeVar,
    Union,
    cast,
    dataclass_transform,
)

from pydantic import ConfigDict
from pydantic import Field as PydanticField

from stratplan.dsl.spans import Span

# Comment carriers: a comment on its own line belongs to the item after it (`leading`),
# a comment at the end of an item's line to that item (`trailing`), and comments before a
# closing brace or the end of file to the enclosing block (`end_comments`).
Comments = tuple[str, ...]


T = TypeVar("T")


@dataclass_transform(frozen_default=True, kw_only_default=True)
def plan_model(cls: type[T]) -> type[T]:
    """A plan model: a dataclass with `__slots__`, frozen, keyword-only.

    Slots, not pydantic's `BaseModel`: a plan holds several models per instruction, and a
    `BaseModel` keeps its fields in an instance dictionary, three to four times the size of
    the object itself (issue 17: peak memory per instruction). Pydantic still validates
    and serialises them (`model_validate`, `model_dump`), as dataclasses, with schemas
    built on first use.

    The constructor, equality, hashing, `repr` and freezing come from `Model`, written once
    for all, not generated per class by `dataclasses` or pydantic (which compile several
    functions a class: 15-40 ms of every command's start for thirty classes). The
    constructor does not validate or convert (a list stays a list: pass tuples): models
    are made by the parser, which guarantees the types, and by the project's own code;
    `model_validate` validates plain data."""
    made: Any = std_dataclass(slots=True, kw_only=True, init=False, repr=False, eq=False)(cls)
    required: list[tuple[str, Any]] = []
    optional: list[tuple[str, Any, Any]] = []
    for field in dataclass_fields(made):
        if field.default_factory is not MISSING:
            raise TypeError(f"{cls.__name__}.{field.name}: plan models take immutable "
                            "defaults, not default factories")
        setter = getattr(made, field.name).__set__  # the slot's member descriptor
        if field.default is MISSING:
            required.append((field.name, setter))
        else:
            optional.append((field.name, setter, field.default))
    made._field_names = tuple(field.name for field in dataclass_fields(made))
    made._setters = (tuple(required), tuple(optional))
    return cast(type[T], made)


_ADAPTERS: dict[type, Any] = {}


def _adapter(cls: type) -> Any:
    """Pydantic's validator and serialiser of a model class (imported and built on first
    use: a lint needs neither, and `pydantic.type_adapter` costs ~15 ms to import)."""
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        from pydantic import TypeAdapter
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter


class _FieldsOf:
    """`Cls.model_fields`: a model's fields by name (each with its `default`)."""

    def __get__(self, instance: object, owner: type) -> dict[str, Field[Any]]:
        return {field.name: field for field in dataclass_fields(owner)}


class _SignatureOf:
    """`Cls.__signature__`, which `inspect.signature` (and so Hypothesis' `builds`) reads:
    the fields as keyword-only parameters, not the shared constructor's `**values`. Made
    on first use: building thirty signatures costs more than the classes themselves."""

    def __get__(self, instance: object, owner: type) -> Signature:
        made: Signature | None = owner.__dict__.get("_signature")
        if made is None:
            made = Signature([
                Parameter(field.name, Parameter.KEYWORD_ONLY, annotation=field.type,
                          default=Parameter.empty if field.default is MISSING
                          else field.default)
                for field in dataclass_fields(owner)])
            type.__setattr__(owner, "_signature", made)
        return made


class Model:
    """Base of every plan model: construction, frozen value semantics over the fields,
    and the part of pydantic's `BaseModel` interface the project uses."""

    __slots__ = ()
    # Read by pydantic for the dataclasses that derive from this one.
    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid")
    _field_names: ClassVar[tuple[str, ...]] = ()
    _setters: ClassVar[tuple[tuple[tuple[str, Any], ...], tuple[tuple[str, Any, Any], ...]]]
    model_fields = _FieldsOf()
    __signature__ = _SignatureOf()

    def __init__(self, **values: Any) -> None:
        required, optional = self._setters
        try:
            for name, setter in required:
                setter(self, values[name])
        except KeyError as missing:
            raise TypeError(f"{type(self).__name__} needs {missing}") from None
        given = len(required)
        for name, setter, default in optional:
            if name in values:
                setter(self, values[name])
                given += 1
            else:
                setter(self, default)
        if given != len(values):
            unknown = sorted(set(values) - set(self._field_names))
            raise TypeError(f"{type(self).__name__} has no field {', '.join(unknown)}")

    @classmethod
    def model_validate(cls, data: Any) -> Self:
        """A model from plain data (or a model), validated by pydantic."""
        model: Self = _adapter(cls).validate_python(data)
        return model

    def _values(self) -> tuple[Any, ...]:
        return tuple([getattr(self, name) for name in self._field_names])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == cast(Model, other)._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._field_names)
        return f"{type(self).__qualname__}({fields})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __getstate__(self) -> tuple[Any, ...]:
        return self._values()

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        for name, value in zip(self._field_names, state, strict=True):
            object.__setattr__(self, name, value)

    def model_dump(self, mode: Literal["python", "json"] = "python") -> dict[str, Any]:
        """The model as plain data (JSON types with `mode="json"`)."""
        data: dict[str, Any] = _adapter(type(self)).dump_python(self, mode=mode)
        return data

    def model_copy(self, update: Mapping[str, Any] | None = None) -> Self:
        """A copy with some fields replaced, not validated (as `BaseModel.model_copy`);
        a name that is not a field is an AttributeError."""
        copied = copy.copy(self)
        for name, value in (update or {}).items():
            if name not in self._field_names:
                raise AttributeError(f"{type(self).__name__} has no field {name!r}")
            object.__setattr__(copied, name, value)
        return copied


# --- expressions ---------------------------------------------------------------------


@plan_model
class Number(Model):
    """A numeric literal; `value` has its suffix applied (93% -> 0.93), `text` is as written."""

    kind: Literal["number"] = "number"
    value: Decimal
    text: str
    span: Span


@plan_model
class NameRef(Model):
    """A reference to a `let` constant or a loop variable."""

    kind: Literal["name"] = "name"
    name: str
    span: Span


@plan_model
class AssetArg(Model):
    """An asset symbol passed to a state function, as in `balance(wallet, ETH)`."""

    kind: Literal["asset"] = "asset"
    symbol: str
    span: Span


@plan_model
class Call(Model):
    """A state function call: balance, collateral, debt, position, price, health, exposure."""

    kind: Literal["call"] = "call"
    func: str
    args: tuple[Expr, ...]
    span: Span


@plan_model
class Neg(Model):
    """Unary minus."""

    kind: Literal["neg"] = "neg"
    operand: Expr
    span: Span


@plan_model
class BinOp(Model):
    """Arithmetic: + - * /."""

    kind: Literal["binop"] = "binop"
    op: Literal["+", "-", "*", "/"]
    left: Expr
    right: Expr
    span: Span


@plan_model
class Compare(Model):
    """A comparison, the atom of a condition."""

    kind: Literal["compare"] = "compare"
    op: Literal["<", "<=", ">", ">=", "==", "!="]
    left: Expr
    right: Expr
    span: Span


@plan_model
class BoolOp(Model):
    """`and` / `or` of two conditions."""

    kind: Literal["boolop"] = "boolop"
    op: Literal["and", "or"]
    left: Expr
    right: Expr
    span: Span


@plan_model
class Not(Model):
    """`not` of a condition."""

    kind: Literal["not"] = "not"
    operand: Expr
    span: Span


Expr = Annotated[
    Union[Number, NameRef, AssetArg, Call, Neg, BinOp, Compare, BoolOp, Not],
    PydanticField(discriminator="kind"),
]
CONDITION_KINDS = frozenset({"compare", "boolop", "not"})


@plan_model
class AllAmount(Model):
    """`all`: the whole balance the instruction draws from."""

    kind: Literal["all"] = "all"
    span: Span


@plan_model
class MaxAmount(Model):
    """`max`: for borrow, the most the lending venue's LTV allows."""

    kind: Literal["max"] = "max"
    span: Span


Amount = Annotated[
    Union[Number, NameRef, AssetArg, Call, Neg, BinOp, Compare, BoolOp, Not, AllAmount, MaxAmount],
    PydanticField(discriminator="kind"),
]


# --- statements ----------------------------------------------------------------------


@plan_model
class Node(Model):
    """Anything that stands on its own line(s) and may carry comments."""

    span: Span
    leading: Comments = ()
    trailing: str | None = None


ContractOperation = Literal[
    "stake", "unstake", "supply", "withdraw", "borrow", "repay", "swap",
    "wrap", "unwrap", "flash_borrow", "flash_repay",
]


@plan_model
class WalletTransferInstruction(Node):
    """`transfer A T from V1 to V2`."""

    kind: Literal["wallet_transfer"] = "wallet_transfer"
    amount: Amount
    token: str
    source_venue: str
    target_venue: str


@plan_model
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


@plan_model
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
    PydanticField(discriminator="kind"),
]


@plan_model
class Block(Node):
    """A node with a body in braces."""

    end_comments: Comments = ()


@plan_model
class AtomicBlock(Block):
    """`atomic NAME [via VENUE] { ... }`: one on-chain transaction."""

    kind: Literal["atomic"] = "atomic"
    name: str
    via: str | None = None
    body: tuple[Statement, ...] = ()


@plan_model
class Repeat(Block):
    """`repeat N [as i] { ... }`."""

    kind: Literal["repeat"] = "repeat"
    count: Expr
    var: str | None = None
    body: tuple[Statement, ...] = ()


@plan_model
class Assert(Node):
    """`assert CONDITION [else "message"]`."""

    kind: Literal["assert"] = "assert"
    condition: Expr
    message: str | None = None


Statement = Annotated[
    Union[WalletTransferInstruction, CEXTradeInstruction, SmartContractInstruction,
          AtomicBlock, Repeat, Assert],
    PydanticField(discriminator="kind"),
]


@plan_model
class Phase(Block):
    """`phase NAME [after A, B] { ... }`."""

    name: str
    after: tuple[str, ...] = ()
    body: tuple[Statement, ...] = ()


@plan_model
class MarketRef(Node):
    """`use market "path.yaml"`."""

    path: str


@plan_model
class SeriesRef(Node):
    """`use series "path.csv"` (v2): prices, funding and rates over time."""

    path: str


DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


@plan_model
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


@plan_model
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


@plan_model
class HoldingAmount(Model):
    """One `AMOUNT ASSET` of a holdings entry."""

    amount: Number
    asset: str
    span: Span


@plan_model
class HoldingEntry(Node):
    """`VENUE: AMOUNT ASSET, ...`."""

    venue: str
    amounts: tuple[HoldingAmount, ...]


@plan_model
class Holdings(Block):
    """`holdings { ... }`: starting balances."""

    entries: tuple[HoldingEntry, ...] = ()


@plan_model
class Let(Node):
    """`let NAME = EXPR`."""

    name: str
    value: Expr


@plan_model
class Setting(Node):
    """`set OPTION = EXPR`."""

    name: str
    value: Expr


@plan_model
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


# Pydantic's schemas for the models are built on first use (`model_dump`, `model_validate`),
# when every forward reference is defined: a lint never builds them (issue 17).

INSTRUCTION_TYPES = (WalletTransferInstruction, CEXTradeInstruction, SmartContractInstruction)
AnyInstruction = WalletTransferInstruction | CEXTradeInstruction | SmartContractInstruction
# The `kind` of each instruction class: cheaper to test than isinstance on pydantic
# classes, which goes through ABCMeta.
INSTRUCTION_KINDS = frozenset(cls.model_fields["kind"].default for cls in INSTRUCTION_TYPES)
AnyStatement = AnyInstruction | AtomicBlock | Repeat | Assert
AnyExpr = Number | NameRef | AssetArg | Call | Neg | BinOp | Compare | BoolOp | Not
AnyAmount = AnyExpr | AllAmount | MaxAmount


def without_spans(model: Model) -> Any:
    """The model as plain data with every `span` left out, to compare plans by meaning."""
    return _strip(model.model_dump(mode="python"))


def _strip(data: Any) -> Any:
    # Plans have bounded depth (the parser enforces nesting limits), so recursion is safe.
    if isinstance(data, dict):
        return {key: _strip(value) for key, value in data.items() if key != "span"}
    if isinstance(data, (list, tuple)):
        return [_strip(item) for item in data]
    return data
