"""A transaction's program for the wallet's account (contracts/StratplanAccount.sol).

Each contract operation of the plan becomes one or more steps: the calls Aave, Balancer,
the DEX, WETH and the staking token expect, with the approvals they need. `all` becomes a
patch (the step reads the account's balance when it runs); a flash loan opens a frame
whose steps run inside the lender's callback, closed by the plan's `flash repay` (the whole
amount the plan repays is the most the account hands back). Frames must nest as callbacks
do: a loan repaid while a later one is still open cannot be one transaction (SP206).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from stratplan.dsl.models import SmartContractInstruction
from stratplan.executors.errors import ExecutionError
from stratplan.executors.evm.abi import MAX_UINT, ZERO_ADDRESS, encode_args
from stratplan.executors.evm.world import ETH, World, fixed, to_wei
from stratplan.executors.market import FlashLenderVenue, LendingVenue
from stratplan.executors.protocol import Order

CALL, AAVE_FLASH, BALANCER_FLASH = 0, 1, 2
PATCH_NONE, PATCH_WORD, PATCH_VALUE, PATCH_BOTH = 0, 1, 2, 3
STEP_TYPE = "(uint8,uint8,uint16,address,address,uint256,uint256,bytes)"
WEI = Decimal(10**18)


@dataclass(frozen=True)
class Step:
    """One step of the account's program (the contract's `Step`)."""

    kind: int
    patch: int
    op: int
    target: str
    patch_token: str
    value: int
    offset: int
    data: bytes

    def as_tuple(self) -> tuple[object, ...]:
        """The step as the ABI encodes it."""
        return (self.kind, self.patch, self.op, self.target, self.patch_token, self.value,
                self.offset, self.data)


@dataclass
class _Frame:
    venue: str
    asset: str
    amount: int
    borrow_op: int
    steps: list[Step] = field(default_factory=list)
    repaid: Decimal = Decimal(0)
    repay_all: bool = False
    repay_op: int = -1


def encode_steps(steps: list[Step]) -> bytes:
    """A program as the account's callbacks decode it: `abi.encode(Step[])`."""
    return encode_args([f"{STEP_TYPE}[]"], [[s.as_tuple() for s in steps]])


class Program:
    """The steps of one transaction, built operation by operation."""

    def __init__(self, world: World, emodes: dict[str, int]) -> None:
        self.world = world
        self.top: list[Step] = []
        self.frames: list[_Frame] = []
        self.emodes = dict(emodes)  # venue -> the account's e-mode id as the program leaves it
        self._approved: set[tuple[str, str]] = set()

    # --- building ----------------------------------------------------------------------------
    def _add(self, step: Step) -> None:
        (self.frames[-1].steps if self.frames else self.top).append(step)

    def call(self, op: int, target: str, data: bytes, value: int = 0, patch: int = PATCH_NONE,
             patch_token: str = ZERO_ADDRESS, offset: int = 0) -> None:
        """Add a call step."""
        self._add(Step(CALL, patch, op, target, patch_token, value, offset, data))

    def approve(self, op: int, asset: str, spender: str) -> None:
        """Let `spender` take the account's `asset` (once per program and pair, and only
        when the account has not already allowed it everything)."""
        if asset == ETH or (asset, spender) in self._approved:
            return
        self._approved.add((asset, spender))
        token = self.world.tokens[asset]
        if int(token.view("allowance", self.world.wallet, spender)) == MAX_UINT:
            return
        self.call(op, token.address, token.calldata("approve", spender, MAX_UINT))

    def set_emode(self, op: int, venue: str, category: int) -> None:
        """Switch the account's e-mode at a venue (only when it changes)."""
        if self.emodes.get(venue, 0) == category:
            return
        pool = self.world.pools[venue].pool
        self.call(op, pool.address, pool.calldata("setUserEMode", category))
        self.emodes[venue] = category

    # --- operations --------------------------------------------------------------------------
    def operation(self, op: int, order: Order, amount: Decimal | None) -> None:
        """The steps of one operation: `amount` is what the model used (None when it failed
        before knowing it); an order for `all` is patched with the balance on chain."""
        instr = order.instruction
        assert isinstance(instr, SmartContractInstruction)
        whole = order.amount == "all"
        if amount is None:
            amount = order.amount if isinstance(order.amount, Decimal) else Decimal(1) / WEI
        wei = to_wei(amount)
        kind = instr.operation
        handler = getattr(self, f"_{kind}")
        handler(op, instr, wei, whole)

    def _wrap(self, op: int, instr: SmartContractInstruction, wei: int, whole: bool) -> None:
        weth = self.world.tokens["WETH"]
        self.call(op, weth.address, weth.calldata("deposit"), value=wei,
                  patch=PATCH_VALUE if whole else PATCH_NONE)

    def _unwrap(self, op: int, instr: SmartContractInstruction, wei: int, whole: bool) -> None:
        weth = self.world.tokens["WETH"]
        self._amount_call(op, weth.address, weth.calldata("withdraw", wei), 4, "WETH", whole)

    def _amount_call(self, op: int, target: str, data: bytes, offset: int, asset: str,
                     whole: bool, value: int = 0) -> None:
        """A call whose amount word (at `offset`) is the balance of `asset` when `whole`."""
        if not whole:
            self.call(op, target, data, value=value)
        elif asset == ETH:
            self.call(op, target, data, patch=PATCH_BOTH, offset=offset)
        else:
            self.call(op, target, data, patch=PATCH_WORD,
                      patch_token=self.world.address_of(asset), offset=offset)

    def _stake(self, op: int, instr: SmartContractInstruction, wei: int, whole: bool) -> None:
        token_in, token_out = instr.token_in, instr.token_out or ""
        staked = self.world.tokens.get(token_out)
        if staked is None or self.world.staked_input.get(token_out) != token_in:
            raise ExecutionError("SP103", f"the chain has no way to stake {token_in} into "
                                 f"{token_out}")
        self.approve(op, token_in, staked.address)
        self._amount_call(op, staked.address, staked.calldata("deposit", wei), 4, token_in,
                          whole, value=wei if token_in == ETH else 0)

    def _unstake(self, op: int, instr: SmartContractInstruction, wei: int, whole: bool) -> None:
        token_in, token_out = instr.token_in, instr.token_out or ""
        staked = self.world.tokens.get(token_in)
        if staked is None or self.world.staked_input.get(token_in) != token_out:
            raise ExecutionError("SP103", f"the chain has no way to unstake {token_in} into "
                                 f"{token_out}")
        self._amount_call(op, staked.address, staked.calldata("withdraw", wei), 4, token_in, whole)

    def _pool(self, instr: SmartContractInstruction) -> tuple[str, str]:
        venue = instr.venue or ""
        if venue not in self.world.pools:
            raise ExecutionError("SP102", f"{venue} is not a lending venue on the chain")
        return venue, self.world.pools[venue].pool.address

    def _supply(self, op: int, instr: SmartContractInstruction, wei: int, whole: bool) -> None:
        venue, pool = self._pool(instr)
        asset = instr.token_in
        handle = self.world.pools[venue].pool
        self.approve(op, asset, pool)
        self._amount_call(op, pool, handle.calldata("supply", self.world.address_of(asset), wei,
                                                    self.world.wallet, 0), 4 + 32, asset, whole)

    def _withdraw(self, op: int, instr: SmartContractInstruction, wei: int, whole: bool) -> None:
        venue, pool = self._pool(instr)
        handle = self.world.pools[venue].pool
        self.call(op, pool, handle.calldata("withdraw", self.world.address_of(instr.token_in),
                                            MAX_UINT if whole else wei, self.world.wallet))

    def _borrow(self, op: int, instr: SmartContractInstruction, wei: int, whole: bool) -> None:
        venue, pool = self._pool(instr)
        handle = self.world.pools[venue].pool
        self.call(op, pool, handle.calldata("borrow", self.world.address_of(instr.token_in), wei,
                                            2, 0, self.world.wallet))

    def _repay(self, op: int, instr: SmartContractInstruction, wei: int, whole: bool) -> None:
        venue, pool = self._pool(instr)
        asset = instr.token_in
        handle = self.world.pools[venue].pool
        self.approve(op, asset, pool)
        self._amount_call(op, pool, handle.calldata("repay", self.world.address_of(asset), wei, 2,
                                                    self.world.wallet), 4 + 32, asset, whole)

    def _swap(self, op: int, instr: SmartContractInstruction, wei: int, whole: bool) -> None:
        raise AssertionError("swaps are built by `swap`, which knows the slippage")

    def swap(self, op: int, order: Order, amount: Decimal | None, slippage: Decimal) -> None:
        """A DEX swap at the order's slippage."""
        instr = order.instruction
        assert isinstance(instr, SmartContractInstruction)
        dex = self.world.dexes.get(instr.venue or "")
        if dex is None:
            raise ExecutionError("SP102", f"{instr.venue} is not a DEX on the chain")
        if amount is None:
            amount = order.amount if isinstance(order.amount, Decimal) else Decimal(0)
        wei = to_wei(amount)
        token_in, token_out = instr.token_in, instr.token_out or ""
        self.approve(op, token_in, dex.address)
        data = dex.calldata("swap", self.world.address_of(token_in),
                            self.world.address_of(token_out), wei, fixed(slippage, WEI))
        self._amount_call(op, dex.address, data, 4 + 64, token_in, order.amount == "all",
                          value=wei if token_in == ETH else 0)

    def _flash_borrow(self, op: int, instr: SmartContractInstruction, wei: int,
                      whole: bool) -> None:
        venue = instr.venue or ""
        terms = self.world.market.venues.get(venue)
        if not isinstance(terms, (LendingVenue, FlashLenderVenue)):
            raise ExecutionError("SP103", f"{venue} does not flash-lend on the chain")
        self.frames.append(_Frame(venue, instr.token_in, wei, op))

    def _flash_repay(self, op: int, instr: SmartContractInstruction, wei: int,
                     whole: bool) -> None:
        raise AssertionError("flash repays are built by `flash_repay`, which knows what is owed")

    def flash_repay(self, op: int, order: Order, amount: Decimal, still_owed: Decimal) -> None:
        """A `flash repay`: closes its loan's frame once nothing is owed on it (the model's
        flash book after the operation), else counts toward what the frame repays."""
        instr = order.instruction
        assert isinstance(instr, SmartContractInstruction)
        venue, asset = instr.venue or "", instr.token_in
        index = next((i for i in range(len(self.frames) - 1, -1, -1)
                      if (self.frames[i].venue, self.frames[i].asset) == (venue, asset)), None)
        if index is None:
            raise ExecutionError("SP206", f"a flash repay to {venue} with no {asset} loan open "
                                 "on chain (a loan is repaid inside its own callback)")
        frame = self.frames[index]
        frame.repaid += amount
        frame.repay_all = frame.repay_all or order.amount == "all"
        frame.repay_op = op
        if still_owed > 0:
            return
        if index != len(self.frames) - 1:
            raise ExecutionError("SP206", f"the {asset} flash loan from {venue} is repaid while "
                                 "a later flash loan is still open: on chain each loan is "
                                 "repaid when its own callback returns, innermost first")
        self._close()

    def _close(self) -> None:
        frame = self.frames.pop()
        world = self.world
        cap = MAX_UINT if frame.repay_all else to_wei(frame.repaid)
        inner = encode_steps(frame.steps)
        data = encode_args(["address", "uint256", "uint256", "uint16", "bytes"],
                           [world.address_of(frame.asset), frame.amount, cap,
                            frame.repay_op if frame.repay_op >= 0 else frame.borrow_op, inner])
        if frame.venue in world.pools:
            kind, lender = AAVE_FLASH, world.pools[frame.venue].pool.address
        elif frame.venue in world.vaults:
            kind, lender = BALANCER_FLASH, world.vaults[frame.venue].address
        else:
            raise ExecutionError("SP103", f"{frame.venue} does not flash-lend on the chain")
        self._add(Step(kind, PATCH_NONE, frame.borrow_op, lender, ZERO_ADDRESS, 0, 0, data))

    def finish(self) -> list[Step]:
        """The top-level steps, every loan still open closed where the block ends (it repays
        what the plan repaid: nothing, or too little, and the lender refuses)."""
        while self.frames:
            self._close()
        return self.top
