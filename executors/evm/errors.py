"""What a reverted transaction says: which operation failed, the contract's error by name,
and the diagnostic code the model gives for the same failure.

The account wraps a failing step's revert data as `StepFailed(op, reason)`; `reason` is what
the callee reverted with: an Aave v3.6 custom error (`CollateralCannotCoverNewBorrow()`), an
Aave v3.0 numeric code (`Error("36")`, COLLATERAL_CANNOT_COVER_NEW_BORROW in its Errors.sol),
Balancer's `BAL#602`, a token's `InsufficientBalance(...)`, or the account's own flash-loan
errors. Names come from the ABIs and Errors.sol kept by `stratplan evm setup`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stratplan.executors.evm.abi import decode_args

ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)
PANIC = bytes.fromhex("4e487b71")  # Panic(uint256)
# Balancer v2's BalancerErrors codes that a flash loan meets.
BALANCER = {"BAL#528": "INSUFFICIENT_FLASH_LOAN_BALANCE", "BAL#602":
            "INSUFFICIENT_FLASH_LOAN_FEE_AMOUNT", "BAL#601": "FLASH_LOAN_FEE_PERCENTAGE_TOO_HIGH"}

# Error name (v3.6's custom errors and v3.0's Errors.sol names) -> the model's code.
_CODES = {
    "CollateralCannotCoverNewBorrow": "SP305", "COLLATERAL_CANNOT_COVER_NEW_BORROW": "SP305",
    "CollateralBalanceIsZero": "SP305", "COLLATERAL_BALANCE_IS_ZERO": "SP305",
    "LtvValidationFailed": "SP305", "LTV_VALIDATION_FAILED": "SP305",
    "HealthFactorLowerThanLiquidationThreshold": "SP301",
    "HEALTH_FACTOR_LOWER_THAN_LIQUIDATION_THRESHOLD": "SP301",
    "NotEnoughAvailableUserBalance": "SP300", "NOT_ENOUGH_AVAILABLE_USER_BALANCE": "SP300",
    "InsufficientBalance": "SP300", "FlashShort": "SP300", "InsufficientAllowance": "SP300",
    "FlashUnderpaid": "SP203", "INSUFFICIENT_FLASH_LOAN_FEE_AMOUNT": "SP203",
    "INSUFFICIENT_FLASH_LOAN_BALANCE": "SP300",
    "BorrowingNotEnabled": "SP103", "BORROWING_NOT_ENABLED": "SP103",
    "NotBorrowableInEMode": "SP103", "FlashloanDisabled": "SP103",
    "InvalidAmount": "SP104", "INVALID_AMOUNT": "SP104",
    "NoDebtOfSelectedType": "SP104", "NO_DEBT_OF_SELECTED_TYPE": "SP104",
    "BadSlippage": "SP104",
}


@dataclass(frozen=True)
class ChainError:
    """A revert, read: the plan operation (None when no step was blamed), the innermost
    error's name and arguments, and the contract that raised it when known."""

    op: int | None
    name: str
    args: tuple[Any, ...] = ()

    def code(self, operation: str) -> str:
        """The diagnostic the model gives for this failure of `operation`."""
        if self.name in ("HealthFactorLowerThanLiquidationThreshold",
                         "HEALTH_FACTOR_LOWER_THAN_LIQUIDATION_THRESHOLD") and \
                operation == "borrow":
            return "SP305"  # a borrow judged at a health below 1 has no room under its LTV
        return _CODES.get(self.name, "SP300")

    def describe(self) -> str:
        """The error as a contract would print it: `Name(arg, ...)`."""
        if not self.args:
            return self.name
        return f"{self.name}({', '.join(_show(a) for a in self.args)})"


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


def read_revert(data: bytes, errors: dict[str, dict[str, Any]],
                codes: dict[str, str]) -> ChainError:
    """The failing operation and the innermost error of a revert's data."""
    op: int | None = None
    for _ in range(16):  # StepFailed may wrap StepFailed (a loan inside a loan)
        named = _decode(data, errors, codes)
        if named.name == "StepFailed" and len(named.args) == 2:
            op = int(named.args[0]) if op is None else op
            data = bytes(named.args[1])
            continue
        if named.name in ("FlashUnderpaid", "FlashShort") and named.args:
            return ChainError(int(named.args[0]) if op is None else op, named.name,
                              tuple(named.args[1:]))
        return ChainError(op, named.name, named.args)
    return ChainError(op, "nested too deep")


def _decode(data: bytes, errors: dict[str, dict[str, Any]], codes: dict[str, str]) -> ChainError:
    if len(data) < 4:
        return ChainError(None, "revert without a reason" if not data else "0x" + data.hex())
    selector, body = data[:4], data[4:]
    try:
        if selector == ERROR_STRING:
            text = str(decode_args(["string"], body)[0])
            return ChainError(None, codes.get(text) or BALANCER.get(text) or text)
        if selector == PANIC:
            return ChainError(None, "Panic", (int(decode_args(["uint256"], body)[0]),))
        known = errors.get("0x" + selector.hex())
        if known is not None:
            return ChainError(None, str(known["name"]),
                              tuple(decode_args(list(known["inputs"]), body)))
    except Exception:  # undecodable revert data: shown as it is
        return ChainError(None, "0x" + data.hex())
    return ChainError(None, "0x" + data.hex())
