// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ISettlementOracle} from "../consumers/ISettlementOracle.sol";

/// A forward on ETH-USD that settles on fixd: the README's example of reading a settlement
/// from another contract (compiled with the others; a test runs it on anvil).
contract SettledForward {
    ISettlementOracle public immutable oracle;
    uint64 public immutable maturity;
    /// USD per ETH, 18 decimals; 0 until settled.
    uint256 public settledPrice;

    constructor(ISettlementOracle oracle_, uint64 maturity_) {
        oracle = oracle_;
        maturity = maturity_;
    }

    /// Anyone may settle once fixd has published the maturity's value; before, this reverts
    /// with `ISettlementOracle.NotSettled(id)`.
    function settle() external returns (uint256 price) {
        bytes32 id = oracle.settlementIdAt(maturity);
        (price,) = oracle.settledValue(id);
        settledPrice = price;
    }
}
