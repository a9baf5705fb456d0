// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// The part of `SettlementOracle` a payee calls.
interface IOracle {
    function postBond(bytes32 settlementId, bytes32 disputeId) external payable;
    function reclaimBond(bytes32 settlementId, bytes32 disputeId) external;
    function withdraw(address payable to) external;
}

/// A test-only disputer with code: it posts bonds as itself and does what `mode` says when it is
/// paid. Also the delegation target of an EOA (EIP-7702), so all its state is set by `arm`, never
/// by a constructor. Never deployed outside tests.
contract Payee {
    /// 0 accept; 1 revert; 2 burn all gas; 3 re-enter `reclaimBond(settlementId, disputeId)`.
    uint8 public mode;
    IOracle public oracle;
    bytes32 public settlementId;
    bytes32 public disputeId;
    /// Payments received that completed.
    uint256 public received;

    function arm(IOracle oracle_, uint8 mode_, bytes32 settlementId_, bytes32 disputeId_) external {
        oracle = oracle_;
        mode = mode_;
        settlementId = settlementId_;
        disputeId = disputeId_;
    }

    function post(bytes32 settlementId_, bytes32 disputeId_) external payable {
        oracle.postBond{value: msg.value}(settlementId_, disputeId_);
    }

    function withdrawTo(address payable to) external {
        oracle.withdraw(to);
    }

    receive() external payable {
        if (mode == 1) revert("payee refuses");
        if (mode == 2) {
            while (true) {}
        }
        if (mode == 3) oracle.reclaimBond(settlementId, disputeId);
        received += msg.value;
    }
}
