// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// The vault's entry points a holder calls.
interface IVault {
    function split(bytes32 seriesId) external payable;
    function merge(bytes32 seriesId, uint256 amount) external;
    function redeem(bytes32 seriesId, uint256 pAmount, uint256 nAmount) external returns (uint256);
}

interface IToken {
    function transfer(address to, uint256 amount) external returns (bool);
}

/// @title PNHolder: a test-only P/N holder with code, for the vault's tests and property run.
/// @notice It splits, merges and redeems like anyone, and when the vault pays it, it does as its
/// `mode` says: accept, try to re-enter `merge` or `redeem` for the same amounts again (counting
/// whether the vault let it), or revert. Nothing deploys it outside tests.
contract PNHolder {
    enum Mode {
        Accept,
        ReenterMerge,
        ReenterRedeem,
        Revert
    }

    IVault public immutable vault;
    Mode public mode;
    bytes32 private _series;
    uint256 private _pAmount;
    uint256 private _nAmount;
    /// Re-entries the vault let through (must stay 0) and refused.
    uint256 public reentered;
    uint256 public refused;

    constructor(address vault_) {
        vault = IVault(vault_);
    }

    function setMode(Mode mode_) external {
        mode = mode_;
    }

    function split(bytes32 seriesId) external payable {
        vault.split{value: msg.value}(seriesId);
    }

    function merge(bytes32 seriesId, uint256 amount) external {
        (_series, _pAmount, _nAmount) = (seriesId, amount, amount);
        vault.merge(seriesId, amount);
    }

    function redeem(bytes32 seriesId, uint256 pAmount, uint256 nAmount) external returns (uint256) {
        (_series, _pAmount, _nAmount) = (seriesId, pAmount, nAmount);
        return vault.redeem(seriesId, pAmount, nAmount);
    }

    function transfer(address token, address to, uint256 amount) external {
        IToken(token).transfer(to, amount);
    }

    receive() external payable {
        if (mode == Mode.Revert) revert("PNHolder: refusing payment");
        if (mode == Mode.ReenterMerge) {
            try vault.merge(_series, _pAmount) {
                ++reentered;
            } catch {
                ++refused;
            }
        } else if (mode == Mode.ReenterRedeem) {
            try vault.redeem(_series, _pAmount, _nAmount) {
                ++reentered;
            } catch {
                ++refused;
            }
        }
    }
}
