"""The plan models: constants agree with the classes, and the slotted models (issue 17)
behave as the validated pydantic models they replaced."""

from __future__ import annotations

import pickle
from decimal import Decimal
from typing import get_args

import pytest
from hypothesis import given
from pydantic import ValidationError

from stratplan.dsl import models
from stratplan.dsl.formatter import format_plan
from stratplan.dsl.models import INSTRUCTION_KINDS, AnyInstruction
from stratplan.dsl.parser import parse
from stratplan.dsl.spans import Span, trusted
from stratplan.dsl.strategies import plans


def test_instruction_kinds_are_the_kinds_of_the_instruction_classes():
    kinds = {cls.model_fields["kind"].default for cls in get_args(AnyInstruction)}
    assert kinds == INSTRUCTION_KINDS == {"wallet_transfer", "cex_trade", "contract"}



SPAN = Span(line=2, column=3, end_line=2, end_column=9)
PLAN_MODELS = [cls for cls in vars(models).values()
               if isinstance(cls, type) and issubclass(cls, models.Model)
               and cls is not models.Model and hasattr(cls, "__pydantic_fields__")]


def test_every_plan_model_is_slotted():
    assert len(PLAN_MODELS) >= 25
    number = trusted(models.Number, value=Decimal("1.5"), text="1.5", span=SPAN)
    assert not hasattr(number, "__dict__")
    with pytest.raises(AttributeError):
        number.text = "2"  # type: ignore[misc]


def test_trusted_equals_the_validating_constructor_with_defaults_filled():
    number = models.Number(value=Decimal("1.5"), text="1.5", span=SPAN)
    fast = trusted(models.WalletTransferInstruction, amount=number, token="USDT",
                   source_venue="wallet", target_venue="binance", span=SPAN)
    slow = models.WalletTransferInstruction(amount=number, token="USDT", source_venue="wallet",
                                            target_venue="binance", span=SPAN)
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert (fast.leading, fast.trailing, fast.kind) == ((), None, "wallet_transfer")
    with pytest.raises(KeyError):
        trusted(models.Number, value=Decimal(1), span=SPAN)  # `text` is required


def test_validation_still_refuses_what_the_model_forbids():
    with pytest.raises(ValidationError):
        models.Number(value=Decimal(1), text="1", span=SPAN, extra=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        models.BinOp(op="%", left=models.Number(value=Decimal(1), text="1", span=SPAN),  # type: ignore[arg-type]
                     right=models.Number(value=Decimal(1), text="1", span=SPAN), span=SPAN)


def test_model_copy_replaces_fields_without_validating_and_refuses_unknown_names():
    number = models.Number(value=Decimal("1.5"), text="1.5", span=SPAN)
    copied = number.model_copy(update={"text": "3/2"})
    assert (copied.text, copied.value, number.text) == ("3/2", Decimal("1.5"), "1.5")
    with pytest.raises(AttributeError):
        number.model_copy(update={"txt": "x"})


@given(plans())
def test_property_parsed_plans_dump_pickle_and_compare_like_validated_ones(plan):
    parsed = parse(format_plan(plan)).plan
    assert parsed is not None
    assert models.without_spans(parsed) == models.without_spans(plan)
    assert pickle.loads(pickle.dumps(parsed)) == parsed
    dumped = parsed.model_dump(mode="json")
    assert dumped["name"] == plan.name and isinstance(dumped["phases"], list)
