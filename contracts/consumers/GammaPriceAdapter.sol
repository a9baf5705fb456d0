// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ISettlementOracle} from "./ISettlementOracle.sol";

/// @title GammaPriceAdapter: fixd settlements through Opyn Gamma's oracle read.
/// @notice Answers `getExpiryPrice(asset, expiryTimestamp)` as Gamma's `Oracle` does, for one
/// asset (the chain's WETH, or whatever token stands for ETH) priced in USD with 8 decimals.
/// The expiry maps to a settlement by `ISettlementOracle.settlementIdAt(expiry)`: the ETH-USD
/// settlement maturing at that second under the network's methodology. Gamma's oTokens expire
/// at 08:00 UTC, so the committee schedules those maturities.
///
/// The price is the settled value truncated from 18 to 8 decimals. `isFinalized` is true once
/// the settlement is published: fixd's challenge window and disputes are over by then, so
/// Gamma's own dispute period has nothing left to wait for.
contract GammaPriceAdapter {
    /// 10^(18 − 8): from fixd's WAD to Gamma's 8 decimals.
    uint256 private constant TO_GAMMA = 1e10;

    ISettlementOracle public immutable settlements;
    /// The one asset priced (ETH-USD's underlying on this chain).
    address public immutable asset;

    /// Only `asset` is priced here; a strike asset such as USDC keeps Gamma's own pricer.
    error UnsupportedAsset(address asset);
    /// `settlements` has no code, or `asset` is zero.
    error BadAdapter();

    constructor(address settlements_, address asset_) {
        if (settlements_.code.length == 0 || asset_ == address(0)) revert BadAdapter();
        settlements = ISettlementOracle(settlements_);
        asset = asset_;
    }

    /// Gamma's `Oracle.getExpiryPrice`: the price of `asset_` at `expiryTimestamp` in USD with 8
    /// decimals, and whether it is final. `(0, false)` until the settlement is published.
    function getExpiryPrice(address asset_, uint256 expiryTimestamp)
        external
        view
        returns (uint256 price, bool isFinalized)
    {
        return _expiryPrice(asset_, expiryTimestamp);
    }

    /// Gamma's `Oracle.isDisputePeriodOver`: true once the settlement is published.
    function isDisputePeriodOver(address asset_, uint256 expiryTimestamp) external view returns (bool) {
        (, bool isFinalized) = _expiryPrice(asset_, expiryTimestamp);
        return isFinalized;
    }

    function _expiryPrice(address asset_, uint256 expiryTimestamp)
        private
        view
        returns (uint256 price, bool isFinalized)
    {
        if (asset_ != asset) revert UnsupportedAsset(asset_);
        if (expiryTimestamp > type(uint64).max) return (0, false);
        bytes32 id = settlements.settlementIdAt(uint64(expiryTimestamp));
        if (!settlements.isSettled(id)) return (0, false);
        (uint256 value,) = settlements.settledValue(id);
        return (value / TO_GAMMA, true);
    }
}
