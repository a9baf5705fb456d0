// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title ISettlementOracle: the plain read interface of fixd settlements, for new protocols.
/// @notice A settlement is one value of an index (ETH-USD: USD per 1 ETH) at one maturity, agreed
/// by fixd's committee, held open to bonded disputes, then published once and never changed.
/// Values have 18 decimals (WAD): 2500.5 USD per ETH is 2500.5e18.
///
/// A settlement's id is `keccak256` of its spec's canonical (BCS) bytes:
///
///     id = keccak256(0x00 ‖ le64(maturity) ‖ methodology)
///
/// where `0x00` is the index ETH-USD, `le64` is the maturity in unix seconds as 8
/// little-endian bytes, and `methodology` is the BCS of the network's methodology parameters
/// (`fixd_proto::types::settlement::MethodologyParams`). `settlementIdAt` computes it on-chain
/// for this deployment's methodology; `fixd settlement show` and the API give the same id.
interface ISettlementOracle {
    /// The settlement is not published yet: its window is open, disputed, or not reached.
    error NotSettled(bytes32 settlementId);

    /// The id of the ETH-USD settlement maturing at `maturity` (unix seconds) under this
    /// deployment's methodology.
    function settlementIdAt(uint64 maturity) external view returns (bytes32);

    /// Whether `settlementId` is published: its value is final.
    function isSettled(bytes32 settlementId) external view returns (bool);

    /// The final value of `settlementId` (18 decimals) and when it was published (unix
    /// seconds). Reverts `NotSettled(settlementId)` until it is published.
    function settledValue(bytes32 settlementId) external view returns (uint256 value, uint64 publishedAt);
}
