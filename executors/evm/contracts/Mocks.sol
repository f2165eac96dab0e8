// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

// The market's assets, oracles, staking, DEX and rates on the local chain (docs/evm.md):
// stand-ins with exactly the numbers of the plan's market, run by a deployer ("admin").

interface IRated {
    function getRate() external view returns (uint256);
}

interface IAnswer {
    function latestAnswer() external view returns (int256);
}

// An ERC-20 whose admin (and the contracts it names minters) may mint and burn.
contract MockToken {
    string public name;
    string public symbol;
    uint8 public immutable decimals;
    uint256 public totalSupply;
    address public immutable admin;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    mapping(address => bool) public minter;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    error InsufficientBalance(address holder, uint256 balance, uint256 needed);
    error InsufficientAllowance(address holder, address spender, uint256 allowance, uint256 needed);
    error NotMinter();

    constructor(string memory name_, string memory symbol_, uint8 decimals_, address admin_) {
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
        admin = admin_;
    }

    function setMinter(address who, bool allowed) external {
        if (msg.sender != admin) revert NotMinter();
        minter[who] = allowed;
    }

    function _isMinter() internal view returns (bool) {
        return msg.sender == admin || minter[msg.sender];
    }

    function mint(address to, uint256 amount) external {
        if (!_isMinter()) revert NotMinter();
        _mint(to, amount);
    }

    function burn(address from, uint256 amount) external {
        if (!_isMinter()) revert NotMinter();
        _burn(from, amount);
    }

    function _mint(address to, uint256 amount) internal {
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    function _burn(address from, uint256 amount) internal {
        uint256 held = balanceOf[from];
        if (held < amount) revert InsufficientBalance(from, held, amount);
        balanceOf[from] = held - amount;
        totalSupply -= amount;
        emit Transfer(from, address(0), amount);
    }

    function _move(address from, address to, uint256 amount) internal {
        uint256 held = balanceOf[from];
        if (held < amount) revert InsufficientBalance(from, held, amount);
        balanceOf[from] = held - amount;
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < amount) revert InsufficientAllowance(from, msg.sender, allowed, amount);
            allowance[from][msg.sender] = allowed - amount;
        }
        _move(from, to, amount);
        return true;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }
}

// Wrapped ether: deposit ETH for WETH 1:1, withdraw the reverse.
contract MockWETH is MockToken {
    error EtherNotSent(address to, uint256 amount);

    constructor(address admin_) MockToken("Wrapped Ether", "WETH", 18, admin_) {}

    receive() external payable {
        _mint(msg.sender, msg.value);
    }

    function deposit() external payable {
        _mint(msg.sender, msg.value);
    }

    function withdraw(uint256 amount) external {
        _burn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert EtherNotSent(msg.sender, amount);
    }
}

// A rate-bearing token (weETH, wstETH): deposit the input asset (ETH, or an ERC-20) and
// receive amount * inputRate / rate; withdraw the reverse. `rate` is the token's value in its
// underlying (getRate, 1e18 = 1), `inputRate` the input asset's value in the same underlying.
contract MockStaked is MockToken {
    address public immutable input;  // address(0): ETH
    uint256 public rate;
    uint256 public immutable inputRate;

    error WrongValue(uint256 sent, uint256 amount);
    error EtherNotSent(address to, uint256 amount);

    constructor(string memory symbol_, address input_, uint256 rate_, uint256 inputRate_, address admin_)
        MockToken(symbol_, symbol_, 18, admin_)
    {
        input = input_;
        rate = rate_;
        inputRate = inputRate_;
    }

    receive() external payable {}

    function getRate() external view returns (uint256) {
        return rate;
    }

    function setRate(uint256 rate_) external {
        if (msg.sender != admin) revert NotMinter();
        rate = rate_;
    }

    function deposit(uint256 amount) external payable returns (uint256 out) {
        if (input == address(0)) {
            if (msg.value != amount) revert WrongValue(msg.value, amount);
        } else {
            MockToken(input).transferFrom(msg.sender, address(this), amount);
        }
        out = amount * inputRate / rate;
        _mint(msg.sender, out);
    }

    function withdraw(uint256 amount) external returns (uint256 out) {
        _burn(msg.sender, amount);
        out = amount * rate / inputRate;
        if (input == address(0)) {
            (bool ok,) = msg.sender.call{value: out}("");
            if (!ok) revert EtherNotSent(msg.sender, out);
        } else {
            MockToken(input).mint(msg.sender, out);
        }
    }
}

// A Chainlink-style feed with 8 decimals whose admin sets the answer.
contract MockFeed {
    int256 public latestAnswer;
    address public immutable admin;
    uint8 public constant decimals = 8;

    error NotAdmin();

    constructor(int256 answer, address admin_) {
        latestAnswer = answer;
        admin = admin_;
    }

    function setAnswer(int256 answer) external {
        if (msg.sender != admin) revert NotAdmin();
        latestAnswer = answer;
    }
}

// An exchange-rate feed (as Aave's price-cap adapters answer for weETH and wstETH, without
// the cap): the underlying's feed times the token's own rate.
contract RateFeed {
    address public immutable base;
    address public immutable token;
    uint8 public constant decimals = 8;

    constructor(address base_, address token_) {
        base = base_;
        token = token_;
    }

    function latestAnswer() external view returns (int256) {
        return IAnswer(base).latestAnswer() * int256(IRated(token).getRate()) / 1e18;
    }
}

// A DEX that fills any pair at the market's prices, less its fee and the slippage the
// order names: out = amountIn * priceIn * (1 - fee - slippage) / priceOut (prices in USD,
// 1e18 = 1; fee and slippage as fractions, 1e18 = 1). It mints what it pays out.
contract MockDex {
    address public immutable admin;
    uint256 public fee;
    mapping(address => uint256) public priceOf;  // address(0): ETH

    error NotAdmin();
    error NoPrice(address token);
    error WrongValue(uint256 sent, uint256 amount);
    error EtherNotSent(address to, uint256 amount);
    error BadSlippage(uint256 slippage);

    constructor(uint256 fee_, address admin_) {
        fee = fee_;
        admin = admin_;
    }

    receive() external payable {}

    function setPrice(address token, uint256 price) external {
        if (msg.sender != admin) revert NotAdmin();
        priceOf[token] = price;
    }

    function swap(address tokenIn, address tokenOut, uint256 amountIn, uint256 slippage)
        external payable returns (uint256 out)
    {
        uint256 priceIn = priceOf[tokenIn];
        uint256 priceOut = priceOf[tokenOut];
        if (priceIn == 0) revert NoPrice(tokenIn);
        if (priceOut == 0) revert NoPrice(tokenOut);
        if (fee + slippage >= 1e18) revert BadSlippage(slippage);
        if (tokenIn == address(0)) {
            if (msg.value != amountIn) revert WrongValue(msg.value, amountIn);
        } else {
            MockToken(tokenIn).transferFrom(msg.sender, address(this), amountIn);
        }
        out = amountIn * priceIn * (1e18 - fee - slippage) / (priceOut * 1e18);
        if (tokenOut == address(0)) {
            (bool ok,) = msg.sender.call{value: out}("");
            if (!ok) revert EtherNotSent(msg.sender, out);
        } else {
            MockToken(tokenOut).mint(msg.sender, out);
        }
    }
}

// Aave v3.0 DataTypes.CalculateInterestRatesParams
struct RatesParams30 {
    uint256 unbacked;
    uint256 liquidityAdded;
    uint256 liquidityTaken;
    uint256 totalStableDebt;
    uint256 totalVariableDebt;
    uint256 averageStableBorrowRate;
    uint256 reserveFactor;
    address reserve;
    address aToken;
}

// Aave v3.6 DataTypes.CalculateInterestRatesParams
struct RatesParams36 {
    uint256 unbacked;
    uint256 liquidityAdded;
    uint256 liquidityTaken;
    uint256 totalDebt;
    uint256 reserveFactor;
    address reserve;
    bool usingVirtualBalance;
    uint256 virtualUnderlyingBalance;
}

// An interest-rate strategy answering the market's APRs (ray, per year) whatever the
// utilisation: the rates a series or the market's `rates:` section gives. Aave v3.0 and v3.6
// call it with their own parameter structs. In v3.6 the pool configurator sets a reserve's
// rates with setInterestRateParams(reserve, abi.encode(supplyRay, borrowRay)).
contract FixedRates {
    address public immutable admin;
    address public configurator;
    mapping(address => uint256) public supplyRate;
    mapping(address => uint256) public borrowRate;

    error NotAdmin();

    constructor(address admin_) {
        admin = admin_;
    }

    function setConfigurator(address configurator_) external {
        if (msg.sender != admin) revert NotAdmin();
        configurator = configurator_;
    }

    function setRates(address reserve, uint256 supplyRay, uint256 borrowRay) external {
        if (msg.sender != admin && msg.sender != configurator) revert NotAdmin();
        supplyRate[reserve] = supplyRay;
        borrowRate[reserve] = borrowRay;
    }

    function setInterestRateParams(address reserve, bytes calldata rateData) external {
        if (msg.sender != admin && msg.sender != configurator) revert NotAdmin();
        (uint256 supplyRay, uint256 borrowRay) = abi.decode(rateData, (uint256, uint256));
        supplyRate[reserve] = supplyRay;
        borrowRate[reserve] = borrowRay;
    }

    function calculateInterestRates(RatesParams36 memory params) external view returns (uint256, uint256) {
        return (supplyRate[params.reserve], borrowRate[params.reserve]);
    }

    function calculateInterestRates(RatesParams30 memory params)
        external view returns (uint256, uint256, uint256)
    {
        return (supplyRate[params.reserve], 0, borrowRate[params.reserve]);
    }

    function getBaseVariableBorrowRate() external pure returns (uint256) {
        return 0;
    }

    function getMaxVariableBorrowRate() external pure returns (uint256) {
        return 0;
    }
}

// Balancer v2's vault asks its authorizer before a governance action (setting the flash-loan
// fee): this one allows every action.
contract AllowAll {
    function canPerform(bytes32, address, address) external pure returns (bool) {
        return true;
    }
}
