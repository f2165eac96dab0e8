"""A local chain: titanoboa's in-process py-evm (Prague rules), offline.

Contracts are deployed from the cached artifacts (executors/evm/setup.py) and called by ABI
(executors/evm/abi.py). Set-up calls (deploying, configuring, moving prices) are plain
message calls from the deployer. The plan's transactions are real ones: signed EIP-1559
transactions from the wallet owner's key, applied by py-evm as a block would apply them, so
their gas is a receipt's `gasUsed` — intrinsic gas and calldata (with EIP-7623's floor),
cold and warm access (EIP-2929, every transaction starting cold), refunds (EIP-3529) — and
their hash a real transaction hash. titanoboa's own compile cache (serialised Python
objects, which run code when loaded) is switched off: nothing here compiles Vyper.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_utils import keccak, to_checksum_address

from stratplan.executors.evm.abi import Abi, Function, encode_args, linked


def _boa() -> Any:
    import boa
    import boa.interpret

    boa.interpret.disable_cache()  # its cache runs code when loaded: never read one
    return boa


class Reverted(Exception):
    """A call or transaction that reverted; `data` is its revert data."""

    def __init__(self, data: bytes, what: str) -> None:
        super().__init__(f"{what} reverted")
        self.data = data


@dataclass(frozen=True)
class Receipt:
    """What a transaction did: status, gas as its receipt counts it, hash, revert data."""

    ok: bool
    gas_used: int
    tx_hash: str
    output: bytes
    seconds: float


class Contract:
    """A deployed contract: its address and ABI, called through the chain."""

    def __init__(self, chain: Chain, name: str, address: str, abi: Abi) -> None:
        self.chain, self.name, self.address, self.abi = chain, name, address, abi

    def fn(self, name: str, arity: int | None = None) -> Function:
        """One function of the ABI."""
        return self.abi.function(name, arity)

    def calldata(self, name: str, *args: Any) -> bytes:
        """Call data for `name(args)`."""
        return self.fn(name, len(args)).calldata(*args)

    def call(self, name: str, *args: Any, sender: str | None = None, value: int = 0) -> Any:
        """A state-changing message call (set-up, not a plan transaction); Reverted on
        failure."""
        fn = self.fn(name, len(args))
        return fn.result(self.chain.message(self.address, fn.calldata(*args), sender, value,
                                            f"{self.name}.{name}"))

    def view(self, name: str, *args: Any) -> Any:
        """A read: a static call."""
        fn = self.fn(name, len(args))
        return fn.result(self.chain.message(self.address, fn.calldata(*args), None, 0,
                                            f"{self.name}.{name}", static=True))


class Chain:
    """One local chain, the contracts' artifacts, and the keys that act on it."""

    def __init__(self, artifacts: dict[str, Any]) -> None:
        boa = _boa()
        self.env = boa.Env()
        self.artifacts = artifacts
        self._abis: dict[str, Abi] = {}
        self.deployer = self.env.generate_address("deployer")
        self.env.set_balance(self.deployer, 10**30)
        self.vm = self.env.evm.vm
        # The block's coinbase is touched by every transaction (its priority fee, 0 here);
        # empty, EIP-161 would delete it at each one, and py-evm can revert a snapshot
        # across one deletion of an account only. A wei keeps it an account.
        self.env.set_balance(to_checksum_address(self.vm.state.coinbase), 1)
        self.chain_id = int(self.vm.state.execution_context.chain_id)
        self._builder = self.vm.get_transaction_builder()
        self.generation = 0  # how many times the chain returned to a snapshot

    # --- contracts -------------------------------------------------------------------------
    def abi(self, name: str) -> Abi:
        """The ABI of an artifact, read once."""
        if name not in self._abis:
            self._abis[name] = Abi(self.artifacts[name]["abi"])
        return self._abis[name]

    def deploy(self, name: str, *args: Any, libraries: dict[str, str] | None = None,
               sender: str | None = None) -> Contract:
        """Deploy an artifact with constructor arguments (and its libraries linked)."""
        art = self.artifacts[name]
        abi = self.abi(name)
        code = linked(art["bytecode"], art.get("links", {}), libraries or {})
        if abi.constructor:
            code += encode_args(abi.constructor, list(args))
        elif args:
            raise TypeError(f"{name} takes no constructor arguments")
        address, _ = self.env.deploy_code(bytecode=code, sender=sender or self.deployer,
                                          gas=30_000_000)
        return Contract(self, name, to_checksum_address(str(address)), abi)

    def at(self, name: str, address: str) -> Contract:
        """A handle on a deployed contract of a known artifact."""
        return Contract(self, name, to_checksum_address(address), self.abi(name))

    def message(self, to: str, data: bytes, sender: str | None, value: int, what: str,
                static: bool = False) -> bytes:
        """Run a message call (not a transaction); its output, or Reverted."""
        computation = self.env.execute_code(to_address=to, sender=sender or self.deployer,
                                            data=data, value=value, gas=30_000_000,
                                            is_modifying=not static)
        if computation.is_error:
            raise Reverted(bytes(computation.output or b""), what)
        return bytes(computation.output or b"")

    # --- transactions ----------------------------------------------------------------------
    def send(self, key: Any, to: str, data: bytes, value: int = 0,
             gas_limit: int = 30_000_000) -> Receipt:
        """Sign and apply one EIP-1559 transaction from `key` (an eth_account key); its
        receipt. A revert is a receipt with `ok` False, never an exception."""
        state = self.vm.state
        sender = key.address
        fee = int(state.base_fee)
        self.env.set_balance(sender, max(self.env.get_balance(sender),
                                         gas_limit * fee + value + 10**18))
        tx = {"type": 2, "chainId": self.chain_id, "nonce": state.get_nonce(
            bytes.fromhex(sender[2:])), "to": to, "value": value, "data": data,
            "gas": gas_limit, "maxFeePerGas": fee, "maxPriorityFeePerGas": 0}
        raw = bytes(key.sign_transaction(tx).raw_transaction)
        transaction = self._builder.decode(raw)
        self._cool()
        start = time.perf_counter()
        computation = state.apply_transaction(transaction)
        receipt = self.vm.make_receipt(self.vm.get_header(), transaction, computation, state)
        seconds = time.perf_counter() - start
        return Receipt(not computation.is_error, int(receipt.gas_used),
                       "0x" + keccak(raw).hex(), bytes(computation.output or b""), seconds)

    def _cool(self) -> None:
        """Forget which accounts and slots were accessed (EIP-2929), as a block does when a
        transaction starts, keeping the snapshots already taken (py-evm's own reset, in
        `lock_changes`, would drop them)."""
        from eth.db.backends.memory import MemoryDB
        from eth.db.journal import JournalDB

        db = self.vm.state._account_db
        old = db._journal_accessed_state
        fresh = JournalDB(MemoryDB())
        for checkpoint in old._journal._checkpoint_stack[1:]:
            fresh.record(checkpoint)
        db._journal_accessed_state = fresh

    @staticmethod
    def key(seed: str) -> Any:
        """A deterministic key (local chain only: never a real one)."""
        return Account.from_key(keccak(text=f"stratplan local chain: {seed}"))

    # --- state -----------------------------------------------------------------------------
    def snapshot(self) -> Any:
        """A point the chain can return to: its state, time and block number."""
        patch = self.env.evm.patch
        return self.vm.state.snapshot(), patch.timestamp, patch.block_number

    def revert(self, snapshot: Any) -> None:
        """Return to a snapshot (it can be used once)."""
        state, timestamp, block = snapshot
        self.vm.state.revert(state)
        self.generation += 1
        patch = self.env.evm.patch
        patch.timestamp, patch.block_number = timestamp, block

    def balance(self, address: str) -> int:
        """ETH held, in wei."""
        return int(self.env.get_balance(address))

    def set_balance(self, address: str, wei: int) -> None:
        """Set the ETH an address holds."""
        self.env.set_balance(address, wei)

    @property
    def timestamp(self) -> int:
        """The time of the block transactions run in (Unix seconds)."""
        return int(self.env.timestamp)

    def advance(self, seconds: int) -> None:
        """Move time (and the block number, one per 12 s) forward."""
        if seconds > 0:
            self.env.time_travel(seconds=seconds)
