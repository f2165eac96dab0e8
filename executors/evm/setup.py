"""`stratplan evm setup`: the contracts of the local chain, fetched and built, kept as JSON.

Nothing is vendored (DESIGN.md, "The model and the reference"). From the npm registry, with
`npm pack` (each tarball checked against the sha512 pinned below, as npm's `integrity`):

- Aave v3.0: `@aave/core-v3@1.19.3`, its hardhat artifacts (bytecode and ABI) and the error
  codes of its `Errors.sol` (BUSL-1.1 until its change date, MIT since);
- Aave v3.6: `@aave-dao/aave-v3-origin@3.6.0`, Solidity sources (BUSL-1.1, with a grant for
  non-production use), compiled here with `solc@0.8.28` (solc-js) against
  `@openzeppelin/contracts@5.1.0` and `@openzeppelin/contracts-upgradeable@5.1.0` (MIT),
  with the settings of aave-v3-origin's foundry.toml (optimizer 200 runs, EVM shanghai, no
  metadata hash);
- Balancer v2's Vault: `@balancer-labs/v2-deployments@3.2.0`, its artifact (GPL-3.0).

stratplan's own contracts (executors/evm/contracts, MIT) are compiled with the same solc.

The result is two JSON files in the user's cache folder (dsl/usercache.py): the reference
contracts of one Aave version, and stratplan's own. Each holds `{"digest", "payload"}`, the
digest being the SHA-256 of the payload written canonically; on load it is computed again,
and for the reference contracts it must also equal the digest pinned here for that version.
Nothing in them is code Python runs: bytecode runs inside the EVM, ABIs are read as data.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from stratplan.dsl.usercache import cache_folder, read_cached, write_atomically

AAVE_VERSIONS = ("v3.0", "v3.6")
DEFAULT_AAVE = "v3.6"


@dataclass(frozen=True)
class Package:
    """An npm package at a pinned version, and the sha512 of its tarball (npm `integrity`)."""

    name: str
    version: str
    integrity: str
    licence: str

    @property
    def spec(self) -> str:
        """`name@version`, as npm takes it."""
        return f"{self.name}@{self.version}"


CORE_V30 = Package("@aave/core-v3", "1.19.3", "sha512-Xr7+VcoU5b4mPwM4IUCnskw3lciwrnL4Xloyad8GOdd"
                   "Yeixnri2lZYobNmErm1LwE50vqjI0O+9QGNKY2TDkeQ==",
                   "BUSL-1.1 until its change date, MIT since")
ORIGIN_V36 = Package("@aave-dao/aave-v3-origin", "3.6.0", "sha512-TwK/TpTZGArN0G3AE+0NoafsaX"
                     "c7BiXdZhYuxcD+8A5OjIGolp0cqu5FZcTDLo/pbavJvMU5v0php/LEJiJ/cQ==",
                     "BUSL-1.1 (non-production use grant)")
BALANCER = Package("@balancer-labs/v2-deployments", "3.2.0", "sha512-pghD7qyTVp1832d7F7yHgAe"
                   "h/EZvS2/GLvUx9ieM671NMh1KTprYZOBCpEVVC9JnE1Vpru5rc9DDNlFw3capVw==",
                   "GPL-3.0")
OZ = Package("@openzeppelin/contracts", "5.1.0", "sha512-p1ULhl7BXzjjbha5aqst+QMLY+4/LCWADXOC"
             "smLHRM77AqiPjnd9vvUN9sosUfhL9JGKpZ0TjEGxgvnizmWGSA==", "MIT")
OZ_UPGRADEABLE = Package("@openzeppelin/contracts-upgradeable", "5.1.0", "sha512-AIElwP5Ck+csl"
                         "NE+Hkemf5SxjJoF4wBvvjxc27Rp+9jaPs/CLIaUBMYe1FNzhdiN0cYuwGRmYaRHmmnt"
                         "uiju4Q==", "MIT")
SOLC = Package("solc", "0.8.28", "sha512-AFCiJ+b4RosyyNhnfdVH4ZR1+TxiL91iluPjw0EJslIu4LXGM9NY"
               "qi2z5y8TqochC4tcH9QsHfwWhOIC9jPDKA==", "GPL-3.0")

# The settings of aave-v3-origin's foundry.toml; stratplan's contracts use the same.
SOLC_SETTINGS: dict[str, Any] = {"optimizer": {"enabled": True, "runs": 200},
                                 "evmVersion": "shanghai", "metadata": {"bytecodeHash": "none"}}

V30_CONTRACTS = ("PoolAddressesProvider", "ACLManager", "BorrowLogic", "BridgeLogic",
                 "EModeLogic", "LiquidationLogic", "PoolLogic", "SupplyLogic",
                 "ConfiguratorLogic", "FlashLoanLogic", "Pool", "PoolConfigurator",
                 "AaveOracle", "AToken", "StableDebtToken", "VariableDebtToken")
V36_ENTRIES = ("src/contracts/instances/PoolInstance.sol",
               "src/contracts/instances/PoolConfiguratorInstance.sol",
               "src/contracts/instances/ATokenInstance.sol",
               "src/contracts/instances/VariableDebtTokenInstance.sol",
               "src/contracts/protocol/configuration/PoolAddressesProvider.sol",
               "src/contracts/protocol/configuration/ACLManager.sol",
               "src/contracts/misc/AaveOracle.sol")
V36_CONTRACTS = ("PoolAddressesProvider", "ACLManager", "BorrowLogic", "LiquidationLogic",
                 "PoolLogic", "SupplyLogic", "ConfiguratorLogic", "FlashLoanLogic",
                 "PoolInstance", "PoolConfiguratorInstance", "ATokenInstance",
                 "VariableDebtTokenInstance", "AaveOracle")
OWN_SOURCES = ("StratplanAccount.sol", "Mocks.sol")
OWN_CONTRACTS = ("StratplanAccount", "MockToken", "MockWETH", "MockStaked", "MockFeed",
                 "RateFeed", "MockDex", "FixedRates", "AllowAll")
VAULT_ARTIFACT = "package/dist/tasks/20210418-vault/artifact/Vault.json"
ERRORS_SOL = "package/contracts/protocol/libraries/helpers/Errors.sol"

# SHA-256 of each reference payload (canonical JSON) as `stratplan evm setup` builds it.
PINNED = {
    "v3.0": "1e14dcb0a45da09efc75dbea1502df922a1f166aceb64d49cc33420bdd26ab5b",
    "v3.6": "669f6d32d2f6cdc3381de1f6d9bdf9ec1e2f754d4ece3abc9b5a216d4d190f5d",
}
FORMAT = 1


class SetupError(Exception):
    """Set-up cannot be done or its result cannot be used; the message is one line."""


def canonical(payload: Any) -> bytes:
    """The payload written one way only: keys sorted, no spaces, UTF-8."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def digest(payload: Any) -> str:
    """SHA-256 of the canonical payload, in hex."""
    return hashlib.sha256(canonical(payload)).hexdigest()


def _own_source_texts() -> dict[str, str]:
    folder = resources.files("stratplan.executors.evm").joinpath("contracts")
    return {name: folder.joinpath(name).read_text(encoding="utf-8") for name in OWN_SOURCES}


def own_key() -> str:
    """What stratplan's own compiled contracts depend on: their sources, solc and settings."""
    return digest({"sources": _own_source_texts(), "solc": SOLC.spec,
                   "settings": SOLC_SETTINGS, "format": FORMAT})[:24]


def reference_path(aave: str) -> Path:
    """The cache file of one Aave version's reference contracts (and Balancer's vault)."""
    return cache_folder() / f"evm-reference-{aave}.json"


def own_path() -> Path:
    """The cache file of stratplan's own compiled contracts, for the sources installed."""
    return cache_folder() / f"evm-stratplan-{own_key()}.json"


# --- loading -----------------------------------------------------------------------------


def _checked(raw: bytes | None, path: Path, pinned: str | None) -> dict[str, Any]:
    if raw is None:
        raise SetupError(f"no EVM contracts in the cache ({path.name}): run "
                         "`stratplan evm setup` (it needs npm)")
    try:
        data = json.loads(raw)
        payload = data["payload"]
        recorded = data["digest"]
    except (ValueError, KeyError, TypeError):
        raise SetupError(f"{path}: not EVM contracts stratplan wrote; run `stratplan evm "
                         "setup` again") from None
    found = digest(payload)
    if found != recorded or (pinned and found != pinned):
        raise SetupError(f"{path}: its digest is not the one expected (damaged or changed); "
                         "run `stratplan evm setup` again")
    _validate(payload, path)
    return payload


def _validate(payload: Any, path: Path) -> None:
    """The payload's shape: contracts with an ABI list, hex bytecode and link offsets."""
    problem = None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        problem = "an unknown format"
    else:
        contracts = payload.get("contracts")
        if not isinstance(contracts, dict):
            problem = "no contracts"
        else:
            for name, art in contracts.items():
                if not (isinstance(art, dict) and isinstance(art.get("abi"), list)
                        and isinstance(art.get("bytecode"), str)
                        and re.fullmatch(r"0x([0-9a-fA-F_$]{2})*", art["bytecode"])
                        and isinstance(art.get("links"), dict)):
                    problem = f"a malformed contract {name!r}"
                    break
    if problem is not None:
        raise SetupError(f"{path}: {problem}; run `stratplan evm setup` again")


def load(aave: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(reference payload, own payload) from the cache; SetupError when absent or wrong."""
    if aave not in AAVE_VERSIONS:
        raise SetupError(f"unknown Aave version {aave!r} (known: {', '.join(AAVE_VERSIONS)})")
    ref_path, mine_path = reference_path(aave), own_path()
    reference = _checked(read_cached(ref_path), ref_path, PINNED.get(aave) or None)
    own = _checked(read_cached(mine_path), mine_path, None)
    return reference, own


def ready(aave: str) -> bool:
    """True when set-up has been done for this Aave version (and the installed sources)."""
    try:
        load(aave)
    except SetupError:
        return False
    return True


# --- building ----------------------------------------------------------------------------

Say = Callable[[str], None]


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise SetupError(f"`stratplan evm setup` needs {name} (Node.js 18 or later with npm: "
                         "`apt-get install nodejs npm`); it was not found on PATH")
    return found


def _run(args: list[str], cwd: Path, stdin: bytes | None = None, timeout: int = 900) -> bytes:
    try:
        done = subprocess.run(args, cwd=cwd, input=stdin, capture_output=True,
                              timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SetupError(f"{' '.join(args[:3])} failed: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
        raise SetupError(f"{' '.join(args[:3])} failed: {last[-1] if last else done.returncode}")
    return done.stdout


def _fetch(package: Package, work: Path, npm: str) -> Path:
    """`npm pack` the package into `work`, check its sha512, unpack it; its folder."""
    out = _run([npm, "pack", package.spec, "--json", "--pack-destination", str(work)], work)
    try:
        filename = json.loads(out)[0]["filename"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise SetupError(f"npm pack {package.spec}: unexpected output") from None
    tarball = work / Path(filename).name
    found = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if found != package.integrity:
        raise SetupError(f"{package.spec}: the tarball's sha512 is not the pinned one")
    folder = work / (tarball.stem + "-unpacked")
    folder.mkdir()
    with tarfile.open(tarball) as archive:
        archive.extractall(folder, filter="data")
    return folder


def _links(art: dict[str, Any]) -> dict[str, list[list[int]]]:
    """{library: [[byte offset, length], ...]} from solc/hardhat `linkReferences`."""
    links: dict[str, list[list[int]]] = {}
    for by_library in art.get("linkReferences", {}).values():
        for library, refs in by_library.items():
            links.setdefault(library, []).extend([ref["start"], ref["length"]] for ref in refs)
    return links


def _artifact(art: dict[str, Any]) -> dict[str, Any]:
    return {"abi": art["abi"], "bytecode": art["bytecode"], "links": _links(art)}


def _compile(node: str, solc_folder: Path, root: Path, entries: tuple[str, ...],
             remaps: list[list[str]], work: Path) -> dict[str, Any]:
    script = resources.files("stratplan.executors.evm").joinpath("compile.js")
    script_path = work / "compile.js"
    script_path.write_text(script.read_text(encoding="utf-8"), encoding="utf-8")
    job = {"solc": str(solc_folder), "root": str(root), "entries": list(entries),
           "remaps": remaps, "settings": SOLC_SETTINGS}
    out = _run([node, str(script_path)], work, json.dumps(job).encode())
    try:
        result = json.loads(out)
    except ValueError:
        raise SetupError("solc-js wrote no JSON") from None
    if result.get("errors"):
        raise SetupError("solc-js: " + result["errors"][0].strip().splitlines()[0])
    return dict(result)


def _error_selectors(contracts: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every custom error any ABI declares: 4-byte selector -> {name, inputs}."""
    from eth_utils import keccak

    found: dict[str, dict[str, Any]] = {}
    for art in contracts.values():
        for entry in art["abi"]:
            if entry.get("type") != "error":
                continue
            types = [_abi_type(i) for i in entry.get("inputs", [])]
            signature = f"{entry['name']}({','.join(types)})"
            found["0x" + keccak(text=signature)[:4].hex()] = {"name": entry["name"],
                                                              "inputs": types}
    return found


def _abi_type(item: dict[str, Any]) -> str:
    kind = str(item["type"])
    if kind.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in item["components"]) + ")" + kind[5:]
    return kind


_CODE = re.compile(r"string\s+public\s+constant\s+([A-Z0-9_]+)\s*=\s*'(\d+)'")


def _loads(path: Path, pinned: str | None) -> bool:
    try:
        _checked(read_cached(path), path, pinned)
    except SetupError:
        return False
    return True


def setup(aave: str, say: Say = lambda _: None, force: bool = False) -> dict[str, float]:
    """Fetch, build and cache the contracts of one Aave version (only what the cache lacks,
    unless `force`); seconds per stage (empty when nothing was needed)."""
    if aave not in AAVE_VERSIONS:
        raise SetupError(f"unknown Aave version {aave!r} (known: {', '.join(AAVE_VERSIONS)})")
    need_reference = force or not _loads(reference_path(aave), PINNED.get(aave) or None)
    need_own = force or not _loads(own_path(), None)
    if not (need_reference or need_own):
        return {}
    npm, node = _tool("npm"), _tool("node")
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="stratplan-evm-") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        wanted = [SOLC]
        if need_reference:
            wanted += [BALANCER] + ([CORE_V30] if aave == "v3.0" else
                                    [ORIGIN_V36, OZ, OZ_UPGRADEABLE])
        unpacked = {}
        for package in wanted:
            say(f"npm pack {package.spec}")
            unpacked[package.name] = _fetch(package, work, npm)
        say(f"npm install {SOLC.spec} (the compiler's own dependencies)")
        solc_tarball = next(work.glob("solc-*.tgz"))
        _run([npm, "install", "--no-save", "--ignore-scripts", "--no-audit", "--no-fund",
              "--no-package-lock", "--prefix", str(work / "solc"), str(solc_tarball)], work)
        solc_folder = work / "solc" / "node_modules" / "solc"
        timings["fetch_s"] = time.perf_counter() - start
        written: list[tuple[Path, dict[str, Any]]] = []
        if need_own:
            start = time.perf_counter()
            written.append((own_path(), _build_own(node, solc_folder, work, say)))
            timings["compile_own_s"] = time.perf_counter() - start
        if need_reference:
            start = time.perf_counter()
            payload = _build_reference(aave, node, solc_folder, unpacked, work, say)
            timings["compile_reference_s"] = time.perf_counter() - start
            pinned = PINNED.get(aave)
            found = digest(payload)
            if pinned and found != pinned:
                raise SetupError(f"the {aave} contracts built here have digest {found}, not "
                                 f"the pinned {pinned}")
            written.append((reference_path(aave), payload))
    for path, data in written:
        problem = write_atomically(path, json.dumps({"digest": digest(data),
                                                     "payload": data}).encode())
        if problem is not None:
            raise SetupError(f"cannot keep the contracts in {path.parent}: {problem}")
    return timings


def _build_own(node: str, solc_folder: Path, work: Path, say: Say) -> dict[str, Any]:
    own_root = work / "own"
    own_root.mkdir()
    for name, text in _own_source_texts().items():
        (own_root / name).write_text(text, encoding="utf-8")
    say("compiling stratplan's contracts")
    built = _compile(node, solc_folder, own_root, OWN_SOURCES, [], work)
    contracts = {name: _artifact(built["contracts"][name]) for name in OWN_CONTRACTS}
    return {"format": FORMAT, "solc": built["version"], "key": own_key(),
            "contracts": contracts, "errors": _error_selectors(contracts)}


def _build_reference(aave: str, node: str, solc_folder: Path, unpacked: dict[str, Path],
                     work: Path, say: Say) -> dict[str, Any]:
    vault = json.loads((unpacked[BALANCER.name] / VAULT_ARTIFACT).read_text())
    contracts: dict[str, Any] = {"BalancerVault": _artifact(vault)}
    codes: dict[str, str] = {}
    if aave == "v3.0":
        core = unpacked[CORE_V30.name] / "package" / "artifacts" / "contracts"
        for file in sorted(core.rglob("*.json")):
            if file.name.endswith(".dbg.json") or file.stem not in V30_CONTRACTS:
                continue
            art = json.loads(file.read_text())
            if art.get("bytecode", "0x") not in ("0x", "") and file.stem not in contracts:
                contracts[file.stem] = _artifact(art)
        errors_sol = (unpacked[CORE_V30.name] / ERRORS_SOL).read_text()
        codes = {code: name for name, code in _CODE.findall(errors_sol)}
        sources = [CORE_V30, BALANCER]
    else:
        say(f"compiling {ORIGIN_V36.spec} with solc-js (about half a minute)")
        root = unpacked[ORIGIN_V36.name] / "package"
        remaps = [["openzeppelin-contracts-upgradeable/contracts/",
                   str(unpacked[OZ_UPGRADEABLE.name] / "package")],
                  ["openzeppelin-contracts/contracts/", str(unpacked[OZ.name] / "package")]]
        built = _compile(node, solc_folder, root, V36_ENTRIES, remaps, work)
        for name in V36_CONTRACTS:
            contracts[name] = _artifact(built["contracts"][name])
        sources = [ORIGIN_V36, OZ, OZ_UPGRADEABLE, SOLC, BALANCER]
    missing = [name for name in (V30_CONTRACTS if aave == "v3.0" else V36_CONTRACTS)
               if name not in contracts]
    if missing:
        raise SetupError(f"the packages lack {', '.join(missing)}")
    return {"format": FORMAT, "aave": aave, "contracts": contracts,
            "sources": {p.spec: {"integrity": p.integrity, "licence": p.licence}
                        for p in sources},
            "errors": _error_selectors(contracts), "codes": codes}
