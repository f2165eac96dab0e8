"""Smart-contract operations: staking, lending, swaps, wrapping and flash loans."""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from typing import cast

from stratplan.dsl.models import SmartContractInstruction
from stratplan.executors.aave_math import aave_account, max_borrow
from stratplan.executors.accounts import (
    LendingAccount,
    health_factor,
    lending_account,
    lending_terms,
)
from stratplan.executors.errors import ExecutionError
from stratplan.executors.ledger import WALLET, Ledger
from stratplan.executors.market import DexVenue, LendingVenue, Market, StakingVenue
from stratplan.executors.protocol import ExecutionResult, Immediate, Order
from stratplan.executors.resolve import drawn, drawn_from, fmt

Handler = Callable[[Order, SmartContractInstruction, Ledger, Market], ExecutionResult]


def _checked_health(instr: SmartContractInstruction, order: Order, ledger: Ledger,
                    market: Market, amount: Decimal) -> ExecutionResult:
    """The result of a lending operation that moved `amount`, after checking health."""
    venue = instr.venue or ""
    health = health_factor(ledger, market, venue)
    # Judged as Aave judges it, in its integers (executors/aave_math.py): at the limit the
    # exact health and Aave's can fall on either side of 1.
    if health is not None and not aave_account(ledger, market, venue).accepts_withdrawal():
        raise ExecutionError("SP301", f"health factor at {venue} falls to {health:.4f}, "
                             "below 1: the position could be liquidated")
    if health is not None and health < order.options.min_health:
        return ExecutionResult(amount, [("SP302", f"health factor at {venue} falls to "
                                         f"{health:.4f}, below min_health "
                                         f"{fmt(order.options.min_health)}")])
    return ExecutionResult(amount)


_MICRO = Decimal("0.000001")


def _terms_in_use(terms: LendingVenue, account: LendingAccount, token: str) -> str:
    """Which LTVs judged a borrow, for its message."""
    if account.emode is not None:
        return f"under e-mode {account.emode}"
    if not terms.emode:
        return "at the assets' own LTVs"
    if not any(token in category.assets for category in terms.emode.values()):
        return f"at the assets' own LTVs: {token} is in no e-mode category"
    return "at the assets' own LTVs: the debt is not all in one e-mode category"


def _stake(order: Order, instr: SmartContractInstruction, ledger: Ledger,
           market: Market) -> ExecutionResult:
    venue = instr.venue or ""
    terms = market.venues.get(venue)
    if not isinstance(terms, StakingVenue):
        raise ExecutionError("SP102", f"{venue} is not a staking venue")
    token_in, token_out = instr.token_in, instr.token_out or ""
    pairs = terms.stake if instr.operation == "stake" else {v: k for k, v in terms.stake.items()}
    if pairs.get(token_in) != token_out:
        raise ExecutionError("SP103", f"{venue} does not {instr.operation} {token_in} "
                             f"into {token_out}")
    if instr.operation == "unstake" and order.in_transaction and not terms.unstake_atomic:
        raise ExecutionError("SP206", f"unstaking at {venue} waits in a withdrawal queue")
    amount = drawn_from(order, ledger, "balance", WALLET, token_in)
    ledger.add("balance", WALLET, token_in, -amount)
    ledger.add("balance", WALLET, token_out,
               amount * market.rate(token_in) / market.rate(token_out))
    return ExecutionResult(amount=amount)


def _supply(order: Order, instr: SmartContractInstruction, ledger: Ledger,
            market: Market) -> ExecutionResult:
    venue, token = instr.venue or "", instr.token_in
    if token not in lending_terms(market, venue).assets:
        raise ExecutionError("SP103", f"{venue} does not accept {token} as collateral")
    amount = drawn_from(order, ledger, "balance", WALLET, token)
    if amount <= 0:  # `all` of nothing: Aave's ValidationLogic refuses it (InvalidAmount)
        raise ExecutionError("SP104", f"nothing to supply: the wallet holds no {token} "
                             f"(a lending venue refuses to supply 0)")
    ledger.add("balance", WALLET, token, -amount)
    ledger.add("collateral", venue, token, amount)
    return ExecutionResult(amount=amount)


def _withdraw(order: Order, instr: SmartContractInstruction, ledger: Ledger,
              market: Market) -> ExecutionResult:
    venue, token = instr.venue or "", instr.token_in
    lending_terms(market, venue)
    amount = drawn_from(order, ledger, "collateral", venue, token)
    if amount <= 0:  # `all` of nothing: Aave refuses it (InvalidAmount)
        raise ExecutionError("SP104", f"nothing to withdraw: {venue} holds no {token} as "
                             "collateral (a lending venue refuses to withdraw 0)")
    ledger.add("collateral", venue, token, -amount)
    ledger.add("balance", WALLET, token, amount)
    return _checked_health(instr, order, ledger, market, amount)


def _borrow(order: Order, instr: SmartContractInstruction, ledger: Ledger,
            market: Market) -> ExecutionResult:
    venue, token = instr.venue or "", instr.token_in
    venue_terms = lending_terms(market, venue)
    terms = venue_terms.assets.get(token)
    if terms is None or not terms.borrowable:
        raise ExecutionError("SP103", f"{venue} does not lend {token}")
    # Judged with the borrow included: borrowing an asset outside the e-mode category
    # drops the whole account to its assets' own LTVs.
    # The limit is Aave's, in its integers (executors/aave_math.py): valued at its oracle
    # prices in 8-decimal USD, collateral rounded down, debt up, the LTV of several assets
    # their value-weighted average in whole basis points. `max` is the most it lends.
    account = lending_account(ledger, market, venue, borrowing=token)
    room = max_borrow(ledger, market, venue, token)
    amount = room if order.amount == "max" else drawn(order, Decimal(0))
    if amount <= 0:
        raise ExecutionError("SP305", f"nothing can be borrowed at {venue}: no collateral room "
                             f"({_terms_in_use(venue_terms, account, token)})")
    if order.amount != "max" and not aave_account(ledger, market, venue, token,
                                                  amount).accepts_borrow():
        shown = fmt(room.quantize(_MICRO, rounding=ROUND_DOWN)) if room >= _MICRO else fmt(room)
        raise ExecutionError("SP305", f"borrowing {fmt(amount)} {token} exceeds {venue}'s LTV "
                             f"limit: at most {shown} {token} more "
                             f"({_terms_in_use(venue_terms, account, token)})")
    ledger.add("debt", venue, token, amount)
    ledger.add("balance", WALLET, token, amount)
    return _checked_health(instr, order, ledger, market, amount)


def _repay(order: Order, instr: SmartContractInstruction, ledger: Ledger,
           market: Market) -> ExecutionResult:
    venue, token = instr.venue or "", instr.token_in
    lending_terms(market, venue)
    owed = ledger.get("debt", venue, token)
    if owed <= 0:  # Aave refuses a repayment where nothing is owed (NoDebtOfSelectedType)
        raise ExecutionError("SP104", f"nothing is owed in {token} at {venue}: there is "
                             "nothing to repay")
    if order.amount == "all":
        amount = min(owed, ledger.get("balance", WALLET, token))
        if amount <= 0:  # Aave refuses to repay 0 (InvalidAmount)
            raise ExecutionError("SP104", f"nothing to repay with: the wallet holds no "
                                 f"{token}")
    else:
        # Like the lending contract, repaying more than is owed takes only the debt.
        amount = min(drawn(order, Decimal(0)), owed)
    ledger.add("balance", WALLET, token, -amount)
    ledger.add("debt", venue, token, -amount)
    return ExecutionResult(amount=amount)


def _swap(order: Order, instr: SmartContractInstruction, ledger: Ledger,
          market: Market) -> ExecutionResult:
    venue = instr.venue or ""
    terms = market.venues.get(venue)
    if not isinstance(terms, DexVenue):
        raise ExecutionError("SP102", f"{venue} is not a DEX")
    token_in, token_out = instr.token_in, instr.token_out or ""
    slippage = order.slippage if order.slippage is not None else order.options.max_slippage
    if slippage < 0 or slippage >= 1:
        raise ExecutionError("SP104", f"slippage {fmt(slippage)} must be from 0 to below 100%")
    amount = drawn_from(order, ledger, "balance", WALLET, token_in)
    value = amount * market.price(token_in)
    received = value / market.price(token_out) * (1 - terms.fee - slippage)
    ledger.add("balance", WALLET, token_in, -amount)
    ledger.add("balance", WALLET, token_out, received)
    ledger.record_cost("fee", value * terms.fee)
    ledger.record_cost("slippage", value * slippage)
    return ExecutionResult(amount=amount, price=market.price(token_in) / market.price(token_out))


def _wrap(order: Order, instr: SmartContractInstruction, ledger: Ledger,
          market: Market) -> ExecutionResult:
    source, target = ("ETH", "WETH") if instr.operation == "wrap" else ("WETH", "ETH")
    if instr.token_in != source:
        raise ExecutionError("SP103", f"{instr.operation} takes {source}, not {instr.token_in}")
    amount = drawn_from(order, ledger, "balance", WALLET, source)
    ledger.add("balance", WALLET, source, -amount)
    ledger.add("balance", WALLET, target, amount)
    return ExecutionResult(amount=amount)


def _flash_borrow(order: Order, instr: SmartContractInstruction, ledger: Ledger,
                  market: Market) -> ExecutionResult:
    venue, token = instr.venue or "", instr.token_in
    if not order.in_transaction:
        raise ExecutionError("SP202", "a flash loan must be borrowed inside an atomic block")
    fee = market.flash_fee(venue, token)
    if fee is None:
        raise ExecutionError("SP103", f"{venue} does not flash-lend {token}")
    amount = drawn(order, Decimal(0))
    ledger.add("balance", WALLET, token, amount)
    ledger.add("flash", venue, token, amount * (1 + fee))
    if fee:
        ledger.record_cost("fee", amount * fee * market.price(token))
    return ExecutionResult(amount=amount)


def _flash_repay(order: Order, instr: SmartContractInstruction, ledger: Ledger,
                 market: Market) -> ExecutionResult:
    venue, token = instr.venue or "", instr.token_in
    owed = ledger.get("flash", venue, token)
    amount = owed if order.amount == "all" else min(drawn(order, Decimal(0)), owed)
    ledger.add("balance", WALLET, token, -amount)
    ledger.add("flash", venue, token, -amount)
    return ExecutionResult(amount=amount)


HANDLERS: dict[str, Handler] = {
    "stake": _stake, "unstake": _stake, "supply": _supply, "withdraw": _withdraw,
    "borrow": _borrow, "repay": _repay, "swap": _swap, "wrap": _wrap, "unwrap": _wrap,
    "flash_borrow": _flash_borrow, "flash_repay": _flash_repay,
}


class ContractExecutor(Immediate):
    """On-chain operations; gas is charged by the caller for the whole transaction."""

    families = frozenset({"contract"})

    def apply(self, order: Order, ledger: Ledger, market: Market) -> ExecutionResult:
        """Apply one contract operation to the ledger."""
        instr = cast(SmartContractInstruction, order.instruction)  # routed by `kind` (see wallet.py)
        return HANDLERS[instr.operation](order, instr, ledger, market)
