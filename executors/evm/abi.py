"""Calling contracts by their ABI: call data, results, library links, revert data.

A small layer over `eth_abi`, so that the chain needs nothing of titanoboa's contract
wrappers (and nothing titanoboa compiles or caches).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

MAX_UINT = 2**256 - 1
ZERO_ADDRESS = "0x" + "00" * 20


def abi_type(item: dict[str, Any]) -> str:
    """The canonical type of an ABI input or output (tuples spelled out)."""
    kind = str(item["type"])
    if kind.startswith("tuple"):
        return "(" + ",".join(abi_type(c) for c in item["components"]) + ")" + kind[5:]
    return kind


@dataclass(frozen=True)
class Function:
    """One function of an ABI: its selector, input and output types."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def signature(self) -> str:
        """`name(type,...)`."""
        return f"{self.name}({','.join(self.inputs)})"

    @property
    def selector(self) -> bytes:
        """The first four bytes of the signature's keccak."""
        return keccak(text=self.signature)[:4]

    def calldata(self, *args: Any) -> bytes:
        """Selector and encoded arguments."""
        return self.selector + abi_encode(list(self.inputs), list(args))

    def result(self, output: bytes) -> Any:
        """The decoded return value: one value, a tuple of several, or None."""
        if not self.outputs:
            return None
        values = abi_decode(list(self.outputs), output)
        return values[0] if len(values) == 1 else values


class Abi:
    """The functions of a contract's ABI, found by name (and by signature when overloaded)."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.functions: dict[str, list[Function]] = {}
        self.constructor: tuple[str, ...] = ()
        for entry in entries:
            if entry.get("type") == "function":
                fn = Function(entry["name"], tuple(abi_type(i) for i in entry["inputs"]),
                              tuple(abi_type(o) for o in entry.get("outputs", [])))
                self.functions.setdefault(fn.name, []).append(fn)
            elif entry.get("type") == "constructor":
                self.constructor = tuple(abi_type(i) for i in entry["inputs"])

    def function(self, name: str, arity: int | None = None) -> Function:
        """The function `name` (or `name(types)`); with overloads, the one taking `arity`
        arguments."""
        if "(" in name:
            base = name.split("(")[0]
            for fn in self.functions.get(base, []):
                if fn.signature == name:
                    return fn
            raise KeyError(name)
        found = self.functions.get(name, [])
        if arity is not None:
            found = [fn for fn in found if len(fn.inputs) == arity]
        if len(found) != 1:
            raise KeyError(f"{name}: {len(found)} matching functions")
        return found[0]


def linked(bytecode: str, links: dict[str, list[list[int]]], libraries: dict[str, str]) -> bytes:
    """The creation code with each library's address written where the compiler left its
    placeholder."""
    code = bytecode[2:] if bytecode.startswith("0x") else bytecode
    for library, places in links.items():
        address = libraries[library][2:].lower()
        for start, length in places:
            if length != 20:
                raise ValueError(f"a link to {library} of {length} bytes")
            at = 2 * start
            code = code[:at] + address + code[at + 40:]
    return bytes.fromhex(code)


def encode_args(types: tuple[str, ...] | list[str], args: list[Any]) -> bytes:
    """ABI-encoded arguments (constructor arguments, nested programs)."""
    return abi_encode(list(types), args)


def decode_args(types: tuple[str, ...] | list[str], data: bytes) -> tuple[Any, ...]:
    """Decoded ABI values; ValueError-like errors from eth_abi when they do not fit."""
    return tuple(abi_decode(list(types), data))
