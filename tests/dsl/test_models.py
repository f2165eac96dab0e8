"""The plan models: constants agree with the classes, and the slotted models (issue 17)
behave as the validated pydantic models they replaced."""

from __future__ import annotations

import pickle
from decimal import Decimal
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from stratplan.dsl import models
from stratplan.dsl.formatter import format_plan
from stratplan.dsl.models import INSTRUCTION_KINDS, AnyInstruction
from stratplan.dsl.parser import parse
from stratplan.dsl.spans import Span
from stratplan.dsl.strategies import plans


def test_instruction_kinds_are_the_kinds_of_the_instruction_classes():
    kinds = {cls.model_fields["kind"].default for cls in get_args(AnyInstruction)}
    assert kinds == INSTRUCTION_KINDS == {"wallet_transfer", "cex_trade", "contract"}



SPAN = Span(line=2, column=3, end_line=2, end_column=9)
PLAN_MODELS = [cls for cls in vars(models).values()
               if isinstance(cls, type) and issubclass(cls, models.Model)
               and cls is not models.Model and "_setters" in vars(cls)]


def test_every_plan_model_is_slotted_and_frozen():
    assert len(PLAN_MODELS) >= 25
    for cls in PLAN_MODELS:
        assert "__dict__" not in dir(cls), cls
    number = models.Number(value=Decimal("1.5"), text="1.5", span=SPAN)
    assert not hasattr(number, "__dict__")
    with pytest.raises(AttributeError):
        number.text = "2"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del number.text  # type: ignore[misc]


def test_the_constructor_fills_defaults_and_refuses_missing_or_unknown_fields():
    number = models.Number(value=Decimal("1.5"), text="1.5", span=SPAN)
    transfer = models.WalletTransferInstruction(amount=number, token="USDT",
                                                source_venue="wallet", target_venue="binance",
                                                span=SPAN)
    assert (transfer.leading, transfer.trailing, transfer.kind) == ((), None, "wallet_transfer")
    assert repr(number) == ("Number(kind='number', value=Decimal('1.5'), text='1.5', "
                            "span=Span(line=2, column=3, end_line=2, end_column=9))")
    with pytest.raises(TypeError, match="text"):
        models.Number(value=Decimal(1), span=SPAN)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="extra"):
        models.Number(value=Decimal(1), text="1", span=SPAN, extra=1)  # type: ignore[call-arg]


def test_equality_and_hash_follow_the_fields_and_the_class():
    one = models.NameRef(name="x", span=SPAN)
    assert one == models.NameRef(name="x", span=SPAN)
    assert hash(one) == hash(models.NameRef(name="x", span=SPAN))
    assert one != models.NameRef(name="y", span=SPAN)
    assert one != models.AssetArg(symbol="x", span=SPAN)  # same values, another class


def test_model_validate_checks_what_the_models_declare():
    number = {"kind": "number", "value": "1", "text": "1",
              "span": {"line": 1, "column": 1, "end_line": 1, "end_column": 2}}
    made = models.BinOp.model_validate({"op": "+", "left": number, "right": number,
                                        "span": number["span"]})
    assert made.left == models.Number(value=Decimal(1), text="1", span=Span(1, 1, 1, 2))
    with pytest.raises(ValidationError):
        models.BinOp.model_validate({"op": "%", "left": number, "right": number,
                                     "span": number["span"]})
    with pytest.raises(ValidationError):
        models.Number.model_validate({**number, "extra": 1})


def test_model_copy_replaces_fields_without_validating_and_refuses_unknown_names():
    number = models.Number(value=Decimal("1.5"), text="1.5", span=SPAN)
    copied = number.model_copy(update={"text": "3/2"})
    assert (copied.text, copied.value, number.text) == ("3/2", Decimal("1.5"), "1.5")
    with pytest.raises(AttributeError):
        number.model_copy(update={"txt": "x"})


@given(plans())
def test_property_parsed_plans_validate_pickle_and_compare_like_constructed_ones(plan):
    parsed = parse(format_plan(plan)).plan
    assert parsed is not None
    assert models.without_spans(parsed) == models.without_spans(plan)
    assert pickle.loads(pickle.dumps(parsed)) == parsed
    # What the parser built is what pydantic validates back from its own dump.
    assert models.Plan.model_validate(parsed.model_dump()) == parsed


@given(st.builds(models.NameRef, name=st.sampled_from(["x", "y"]), span=st.just(SPAN)))
def test_hypothesis_builds_models_from_their_signatures(built):
    assert built == models.NameRef(name=built.name, span=SPAN)


def test_signatures_name_the_fields_and_factories_are_refused():
    import inspect
    from dataclasses import field

    params = inspect.signature(models.Number).parameters
    assert list(params) == ["kind", "value", "text", "span"]
    assert params["kind"].default == "number" and params["span"].default is inspect.Parameter.empty
    with pytest.raises(TypeError, match="default factories"):
        @models.plan_model
        class Bad(models.Model):
            items: list[int] = field(default_factory=list)
