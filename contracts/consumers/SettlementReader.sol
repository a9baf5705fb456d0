// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ISettlementOracle} from "./ISettlementOracle.sol";

/// The part of `SettlementOracle` a reader needs.
interface ISettlementStore {
    function getSettlement(bytes32 id) external view returns (uint256 value, uint64 publishedAt, uint8 status);
}

/// @title SettlementReader: `ISettlementOracle` over a deployed `SettlementOracle`.
/// @notice Holds no value and no owner: it reads the oracle and computes settlement ids for the
/// methodology it was deployed with (see `ISettlementOracle` for the id's bytes).
contract SettlementReader is ISettlementOracle {
    /// `SettlementOracle.getSettlement`'s status of a published settlement.
    uint8 private constant PUBLISHED = 1;
    /// BCS's variant index of `Index::EthUsd`.
    bytes1 private constant ETH_USD = 0x00;

    /// The SettlementOracle read.
    ISettlementStore public immutable oracle;
    /// BCS of the network's `MethodologyParams`: the bytes of a spec after its index and maturity.
    bytes public methodology;

    /// `methodology` is empty, or `oracle` has no code.
    error BadReader();

    constructor(address oracle_, bytes memory methodology_) {
        if (methodology_.length == 0 || oracle_.code.length == 0) revert BadReader();
        oracle = ISettlementStore(oracle_);
        methodology = methodology_;
    }

    /// @inheritdoc ISettlementOracle
    function settlementIdAt(uint64 maturity) external view returns (bytes32) {
        return keccak256(abi.encodePacked(ETH_USD, _le64(maturity), methodology));
    }

    /// @inheritdoc ISettlementOracle
    function isSettled(bytes32 settlementId) external view returns (bool) {
        (,, uint8 status) = oracle.getSettlement(settlementId);
        return status == PUBLISHED;
    }

    /// @inheritdoc ISettlementOracle
    function settledValue(bytes32 settlementId) external view returns (uint256 value, uint64 publishedAt) {
        uint8 status;
        (value, publishedAt, status) = oracle.getSettlement(settlementId);
        if (status != PUBLISHED) revert NotSettled(settlementId);
    }

    /// `v` as 8 little-endian bytes, as BCS writes a u64.
    function _le64(uint64 v) private pure returns (bytes8 le) {
        for (uint256 i = 0; i < 8; ++i) {
            le |= bytes8(bytes1(uint8(v >> (8 * i)))) >> (8 * i);
        }
    }
}
