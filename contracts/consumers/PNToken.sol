// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title PNToken: one side (P or N) of a `PNVault` series, an ERC-20 of 18 decimals.
/// @notice Deployed once by the vault as an implementation, then cloned (EIP-1167) twice per
/// series; each clone is initialized once by the vault with its name and symbol. Only the vault
/// mints and burns: it mints on `split` and burns on `merge` and `redeem`, from the caller's own
/// balance. Holders transfer and approve as with any ERC-20.
contract PNToken is ERC20 {
    /// The vault that mints and burns; set by the implementation's constructor (so nobody can
    /// initialize the implementation) and by `initialize` in each clone.
    address public vault;
    string private _tokenName;
    string private _tokenSymbol;

    /// A call only the vault may make.
    error OnlyVault(address caller);
    /// The clone was initialized already.
    error AlreadyInitialized();

    constructor() ERC20("", "") {
        vault = msg.sender;
    }

    /// Makes a fresh clone the vault's token, once.
    function initialize(string calldata name_, string calldata symbol_) external {
        if (vault != address(0)) revert AlreadyInitialized();
        vault = msg.sender;
        _tokenName = name_;
        _tokenSymbol = symbol_;
    }

    function name() public view override returns (string memory) {
        return _tokenName;
    }

    function symbol() public view override returns (string memory) {
        return _tokenSymbol;
    }

    function mint(address to, uint256 amount) external {
        if (msg.sender != vault) revert OnlyVault(msg.sender);
        _mint(to, amount);
    }

    function burn(address from, uint256 amount) external {
        if (msg.sender != vault) revert OnlyVault(msg.sender);
        _burn(from, amount);
    }
}
