"""Model-level constants agree with the model classes they stand for."""

from __future__ import annotations

from typing import get_args

from stratplan.dsl.models import INSTRUCTION_KINDS, AnyInstruction


def test_instruction_kinds_are_the_kinds_of_the_instruction_classes():
    kinds = {cls.model_fields["kind"].default for cls in get_args(AnyInstruction)}
    assert kinds == INSTRUCTION_KINDS == {"wallet_transfer", "cex_trade", "contract"}
