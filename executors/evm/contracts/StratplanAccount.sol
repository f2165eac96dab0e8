// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

// The wallet's account on the local chain (docs/evm.md): it holds the wallet's on-chain
// assets and its lending positions, and runs one program per transaction. A program is a
// list of steps; a step is a call, or a flash loan whose inner program runs inside the
// lender's callback (Aave's flashLoanSimple, Balancer v2's flashLoan). A step may patch a
// word of its calldata, or the ETH it sends, with this account's balance at that moment:
// how `all` is carried out. A failing step reverts the whole transaction with
// StepFailed(op, reason): `op` is the plan operation, `reason` what the callee reverted with.

interface IERC20Like {
    function balanceOf(address account) external view returns (uint256);
    function approve(address spender, uint256 amount) external returns (bool);
    function transfer(address to, uint256 amount) external returns (bool);
}

interface IAaveFlash {
    function flashLoanSimple(address receiver, address asset, uint256 amount, bytes calldata params,
                             uint16 referralCode) external;
}

interface IBalancerFlash {
    function flashLoan(address recipient, address[] calldata tokens, uint256[] calldata amounts,
                       bytes calldata userData) external;
}

contract StratplanAccount {
    uint8 internal constant CALL = 0;
    uint8 internal constant AAVE_FLASH = 1;
    uint8 internal constant BALANCER_FLASH = 2;
    uint8 internal constant PATCH_NONE = 0;
    uint8 internal constant PATCH_WORD = 1;   // calldata word at `offset` := balance
    uint8 internal constant PATCH_VALUE = 2;  // ETH sent := ETH balance
    uint8 internal constant PATCH_BOTH = 3;   // both, with the ETH balance (staking all ETH)
    address internal constant ETHER = address(0);

    // kind CALL: target.call{value}(data), patched as `patch` says (patchToken ETHER: ETH).
    // kind *_FLASH: target is the lender; data = abi.encode(asset, amount, repayCap, repayOp,
    // inner steps); the loan is repaid, up to repayCap, when the inner steps are done.
    struct Step {
        uint8 kind;
        uint8 patch;
        uint16 op;
        address target;
        address patchToken;
        uint256 value;
        uint256 offset;
        bytes data;
    }

    error StepFailed(uint16 op, bytes reason);
    error NotOwner();
    error NotLender();
    // The plan repays less than the lender is owed (repaid < owed), or holds less than it repays.
    error FlashUnderpaid(uint16 op, uint256 owed, uint256 repaid);
    error FlashShort(uint16 op, address asset, uint256 held, uint256 needed);

    address public immutable owner;
    // The lender whose callback is expected, and what it is to repay (set while a loan runs).
    address private expectedLender;
    uint256 private repayCap;
    uint16 private repayOp;

    constructor(address owner_) {
        owner = owner_;
    }

    receive() external payable {}

    function run(Step[] calldata steps) external payable {
        if (msg.sender != owner) revert NotOwner();
        for (uint256 i = 0; i < steps.length; i++) {
            _step(steps[i]);
        }
    }

    function _runMemory(Step[] memory steps) internal {
        for (uint256 i = 0; i < steps.length; i++) {
            _step(steps[i]);
        }
    }

    function _balance(address token) internal view returns (uint256) {
        return token == ETHER ? address(this).balance : IERC20Like(token).balanceOf(address(this));
    }

    function _step(Step memory s) internal {
        if (s.kind == CALL) {
            uint256 value = s.value;
            bytes memory data = s.data;
            if (s.patch == PATCH_WORD || s.patch == PATCH_BOTH) {
                uint256 amount = s.patch == PATCH_BOTH ? address(this).balance : _balance(s.patchToken);
                uint256 offset = s.offset;
                assembly {
                    mstore(add(add(data, 32), offset), amount)
                }
            }
            if (s.patch == PATCH_VALUE || s.patch == PATCH_BOTH) {
                value = address(this).balance;
            }
            (bool ok, bytes memory reason) = s.target.call{value: value}(data);
            if (!ok) _fail(s.op, reason);
            return;
        }
        _flash(s);
    }

    function _flash(Step memory s) internal {
        (address asset, uint256 amount, uint256 cap, uint16 closing, bytes memory inner) =
            abi.decode(s.data, (address, uint256, uint256, uint16, bytes));
        address outerLender = expectedLender;
        uint256 outerCap = repayCap;
        uint16 outerOp = repayOp;
        expectedLender = s.target;
        repayCap = cap;
        repayOp = closing;
        bytes memory request;
        if (s.kind == AAVE_FLASH) {
            request = abi.encodeCall(IAaveFlash.flashLoanSimple, (address(this), asset, amount, inner, 0));
        } else {
            address[] memory tokens = new address[](1);
            uint256[] memory amounts = new uint256[](1);
            tokens[0] = asset;
            amounts[0] = amount;
            request = abi.encodeCall(IBalancerFlash.flashLoan, (address(this), tokens, amounts, inner));
        }
        (bool ok, bytes memory why) = s.target.call(request);
        expectedLender = outerLender;
        repayCap = outerCap;
        repayOp = outerOp;
        if (!ok) _fail(s.op, why);
    }

    // A step's failure: a StepFailed or flash error raised deeper (inside a callback) is
    // passed on as it is; anything else is wrapped with the operation that caused it.
    function _fail(uint16 op, bytes memory reason) internal pure {
        if (reason.length >= 4) {
            bytes4 selector = bytes4(reason);
            if (selector == StepFailed.selector || selector == FlashUnderpaid.selector
                || selector == FlashShort.selector) {
                assembly {
                    revert(add(reason, 32), mload(reason))
                }
            }
        }
        revert StepFailed(op, reason);
    }

    function _repayAmount(address asset, uint256 owed) internal view returns (uint256) {
        uint256 cap = repayCap;
        if (cap < owed) revert FlashUnderpaid(repayOp, owed, cap);
        uint256 held = _balance(asset);
        if (held < owed) revert FlashShort(repayOp, asset, held, owed);
        return owed;
    }

    // Aave v3 IFlashLoanSimpleReceiver: the pool pulls amount + premium after this returns.
    function executeOperation(address asset, uint256 amount, uint256 premium, address initiator,
                              bytes calldata params) external returns (bool) {
        if (msg.sender != expectedLender || initiator != address(this)) revert NotLender();
        _runMemory(abi.decode(params, (Step[])));
        uint256 owed = _repayAmount(asset, amount + premium);
        IERC20Like(asset).approve(msg.sender, owed);
        return true;
    }

    // Balancer v2 IFlashLoanRecipient: the vault checks its balance after this returns.
    function receiveFlashLoan(address[] calldata tokens, uint256[] calldata amounts,
                              uint256[] calldata feeAmounts, bytes calldata userData) external {
        if (msg.sender != expectedLender) revert NotLender();
        _runMemory(abi.decode(userData, (Step[])));
        uint256 owed = _repayAmount(tokens[0], amounts[0] + feeAmounts[0]);
        if (!IERC20Like(tokens[0]).transfer(msg.sender, owed)) revert FlashShort(repayOp, tokens[0], 0, owed);
    }
}
