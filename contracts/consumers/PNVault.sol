// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";

import {ISettlementOracle} from "./ISettlementOracle.sol";
import {PNToken} from "./PNToken.sol";

/// @title PNVault: the P/N split of 1 ETH, settled once by fixd (DESIGN section 9).
/// @notice A series is (settlement, strike S). `split` takes ETH and mints as many P and N
/// tokens (ERC-20, 18 decimals); `merge` burns equal P and N and returns the ETH, at any time.
/// Once the oracle has published the settlement's value x (USD per ETH), 1 P pays
/// `p = 1 ETH` if x ≤ S, else `S / x` ETH (worth S dollars), and 1 N pays `n = 1 ETH − p`:
/// `redeem(series, a, b)` burns a P and b N and pays `⌊a·p/WAD⌋ + ⌊b·n/WAD⌋` wei, with
/// `p = ⌊S·WAD/x⌋` as in `fixd_proto::payout::pn_split`. Nothing is ever liquidated.
///
/// Solvency: each series keeps its own `collateral` (ETH split, less ETH paid). Before
/// publication P supply = N supply = collateral. After it, each merge pays `a = a·(p+n)/WAD`
/// and each redeem pays at most `(a·p + b·n)/WAD`, so `collateral ≥ (P·p + N·n)/WAD` always
/// holds for the outstanding supplies P and N: every claim is covered, and what rounding down
/// leaves (at most 1 wei, and under 2 more per redemption) stays in the vault as the series'
/// `dust`.
///
/// Payouts are pushed to the caller after every state change; every entry point holds a
/// transient re-entry guard, so a receiver that calls back gains nothing.
contract PNVault is ReentrancyGuardTransient {
    uint256 private constant WAD = 1e18;

    struct Series {
        /// The settlement whose value settles the series.
        bytes32 settlementId;
        /// Its maturity, unix seconds.
        uint64 maturity;
        /// S, USD per ETH with 18 decimals.
        uint128 strike;
        PNToken p;
        PNToken n;
        /// ETH held for this series: split, less what merge and redeem paid.
        uint256 collateral;
    }

    /// Where settlement values come from.
    ISettlementOracle public immutable settlements;
    /// The token every series' P and N clone.
    address public immutable tokenImplementation;
    mapping(bytes32 seriesId => Series) private _series;
    /// Σ collateral over every series; the vault's balance is at least this.
    uint256 public totalCollateral;

    event SeriesCreated(
        bytes32 indexed seriesId,
        bytes32 indexed settlementId,
        uint64 maturity,
        uint128 strike,
        address p,
        address n
    );
    event Split(bytes32 indexed seriesId, address indexed holder, uint256 amount);
    event Merged(bytes32 indexed seriesId, address indexed holder, uint256 amount);
    event Redeemed(bytes32 indexed seriesId, address indexed holder, uint256 pAmount, uint256 nAmount, uint256 paid);

    /// No series has this id: create it with `createSeries(maturity, strike)` first.
    error UnknownSeries(bytes32 seriesId);
    /// The series exists already; use it.
    error SeriesExists(bytes32 seriesId);
    /// A strike must be above zero.
    error ZeroStrike();
    /// Nothing to split, merge or redeem.
    error ZeroAmount();
    /// The settlement is published: its claims are fixed, so no new series or split; redeem.
    error AlreadySettled(bytes32 settlementId);
    /// The settlement is not published yet: merge instead, or wait for publication to redeem.
    error SettlementNotPublished(bytes32 settlementId);
    /// `settlements` has no code.
    error BadVault();

    constructor(address settlements_) {
        if (settlements_.code.length == 0) revert BadVault();
        settlements = ISettlementOracle(settlements_);
        tokenImplementation = address(new PNToken());
    }

    /// A series' id: `keccak256(abi.encode(settlementId, strike))`.
    function seriesIdOf(bytes32 settlementId, uint128 strike) public pure returns (bytes32) {
        return keccak256(abi.encode(settlementId, strike));
    }

    /// Creates the series of the ETH-USD settlement maturing at `maturity` (by the oracle's
    /// `settlementIdAt`) at `strike` (USD per ETH, 18 decimals), with its P and N tokens at
    /// addresses fixed by the series id. Anyone may, once per series, before publication.
    function createSeries(uint64 maturity, uint128 strike) external nonReentrant returns (bytes32 seriesId) {
        if (strike == 0) revert ZeroStrike();
        bytes32 settlementId = settlements.settlementIdAt(maturity);
        seriesId = seriesIdOf(settlementId, strike);
        if (address(_series[seriesId].p) != address(0)) revert SeriesExists(seriesId);
        if (settlements.isSettled(settlementId)) revert AlreadySettled(settlementId);
        PNToken p = _token(seriesId, "P", maturity, strike);
        PNToken n = _token(seriesId, "N", maturity, strike);
        _series[seriesId] = Series(settlementId, maturity, strike, p, n, 0);
        emit SeriesCreated(seriesId, settlementId, maturity, strike, address(p), address(n));
    }

    /// Takes the ETH sent and mints as many P and N to the caller. Before publication only.
    function split(bytes32 seriesId) external payable nonReentrant {
        Series storage s = _existing(seriesId);
        if (msg.value == 0) revert ZeroAmount();
        if (settlements.isSettled(s.settlementId)) revert AlreadySettled(s.settlementId);
        s.collateral += msg.value;
        totalCollateral += msg.value;
        s.p.mint(msg.sender, msg.value);
        s.n.mint(msg.sender, msg.value);
        emit Split(seriesId, msg.sender, msg.value);
    }

    /// Burns `amount` P and `amount` N of the caller and pays it `amount` wei. At any time.
    function merge(bytes32 seriesId, uint256 amount) external nonReentrant {
        Series storage s = _existing(seriesId);
        if (amount == 0) revert ZeroAmount();
        s.p.burn(msg.sender, amount);
        s.n.burn(msg.sender, amount);
        s.collateral -= amount;
        totalCollateral -= amount;
        emit Merged(seriesId, msg.sender, amount);
        Address.sendValue(payable(msg.sender), amount);
    }

    /// After publication: burns `pAmount` P and `nAmount` N of the caller and pays it
    /// `⌊pAmount·p/WAD⌋ + ⌊nAmount·n/WAD⌋` wei. Returns what it paid.
    function redeem(bytes32 seriesId, uint256 pAmount, uint256 nAmount)
        external
        nonReentrant
        returns (uint256 paid)
    {
        Series storage s = _existing(seriesId);
        if (pAmount == 0 && nAmount == 0) revert ZeroAmount();
        (uint256 p, uint256 n) = _shares(s);
        if (pAmount != 0) s.p.burn(msg.sender, pAmount);
        if (nAmount != 0) s.n.burn(msg.sender, nAmount);
        paid = pAmount * p / WAD + nAmount * n / WAD;
        s.collateral -= paid;
        totalCollateral -= paid;
        emit Redeemed(seriesId, msg.sender, pAmount, nAmount, paid);
        if (paid != 0) Address.sendValue(payable(msg.sender), paid);
    }

    /// The series: settlement, maturity, strike, tokens and collateral.
    function getSeries(bytes32 seriesId) external view returns (Series memory) {
        return _series[seriesId];
    }

    /// What 1 P and 1 N (10^18 units each) pay, in wei, once the settlement is published:
    /// `(true, x, p, n)`; `(false, 0, 0, 0)` before.
    function payouts(bytes32 seriesId) external view returns (bool settled, uint256 value, uint256 p, uint256 n) {
        Series storage s = _existing(seriesId);
        if (!settlements.isSettled(s.settlementId)) return (false, 0, 0, 0);
        (value,) = settlements.settledValue(s.settlementId);
        (p, n) = _split(value, s.strike);
        settled = true;
    }

    /// The series' rounding dust: its collateral less what every outstanding P and N would be
    /// paid if redeemed now. Zero before publication, when collateral = P supply = N supply.
    function dust(bytes32 seriesId) external view returns (uint256) {
        Series storage s = _existing(seriesId);
        if (!settlements.isSettled(s.settlementId)) return 0;
        (uint256 p, uint256 n) = _shares(s);
        return s.collateral - s.p.totalSupply() * p / WAD - s.n.totalSupply() * n / WAD;
    }

    function _existing(bytes32 seriesId) private view returns (Series storage s) {
        s = _series[seriesId];
        if (address(s.p) == address(0)) revert UnknownSeries(seriesId);
    }

    /// The series' (p, n) from its published value; reverts before publication.
    function _shares(Series storage s) private view returns (uint256 p, uint256 n) {
        if (!settlements.isSettled(s.settlementId)) revert SettlementNotPublished(s.settlementId);
        (uint256 value,) = settlements.settledValue(s.settlementId);
        return _split(value, s.strike);
    }

    /// `fixd_proto::payout::pn_split`: p = WAD if x ≤ S, else ⌊S·WAD/x⌋; n = WAD − p.
    function _split(uint256 x, uint256 strike) private pure returns (uint256 p, uint256 n) {
        p = x <= strike ? WAD : strike * WAD / x;
        n = WAD - p;
    }

    /// A series' P or N token: a clone at an address fixed by (series, side), named e.g.
    /// "fixd ETH-USD P 2025-06-12T16:00:00Z strike 2600" with symbol "P-ETHUSD-20250612-2600".
    function _token(bytes32 seriesId, string memory side, uint64 maturity, uint128 strike)
        private
        returns (PNToken token)
    {
        token = PNToken(Clones.cloneDeterministic(tokenImplementation, keccak256(abi.encode(seriesId, side))));
        (uint256 y, uint256 mo, uint256 d) = _date(maturity / 86400);
        uint256 secs = maturity % 86400;
        string memory date = string.concat(Strings.toString(y), "-", _two(mo), "-", _two(d));
        string memory time = string.concat(_two(secs / 3600), ":", _two(secs / 60 % 60), ":", _two(secs % 60));
        string memory price = _decimal(strike);
        token.initialize(
            string.concat("fixd ETH-USD ", side, " ", date, "T", time, "Z strike ", price),
            string.concat(side, "-ETHUSD-", Strings.toString(y), _two(mo), _two(d), "-", price)
        );
    }

    /// The civil date of a count of days since 1970-01-01 (H. Hinnant's `civil_from_days`).
    function _date(uint256 days_) private pure returns (uint256 y, uint256 m, uint256 d) {
        uint256 z = days_ + 719468;
        uint256 era = z / 146097;
        uint256 doe = z - era * 146097;
        uint256 yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        uint256 doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        uint256 mp = (5 * doy + 2) / 153;
        d = doy - (153 * mp + 2) / 5 + 1;
        m = mp < 10 ? mp + 3 : mp - 9;
        y = yoe + era * 400 + (m <= 2 ? 1 : 0);
    }

    function _two(uint256 v) private pure returns (string memory) {
        return v < 10 ? string.concat("0", Strings.toString(v)) : Strings.toString(v);
    }

    /// A WAD as a decimal without trailing zeros: 2600e18 → "2600", 2600.5e18 → "2600.5".
    function _decimal(uint256 wad) private pure returns (string memory) {
        string memory whole = Strings.toString(wad / WAD);
        uint256 frac = wad % WAD;
        if (frac == 0) return whole;
        uint256 digits = 18;
        while (frac % 10 == 0) {
            frac /= 10;
            --digits;
        }
        bytes memory text = bytes(Strings.toString(frac));
        bytes memory zeros = new bytes(digits - text.length);
        for (uint256 i = 0; i < zeros.length; ++i) {
            zeros[i] = "0";
        }
        return string.concat(whole, ".", string(zeros), string(text));
    }
}
