// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @title SettlementOracle: fixd's final settlement values and dispute bonds on-chain.
/// @notice A committee of fixd members signs each settlement's `FinalReport` (EIP-712, one
/// secp256k1 key per member). Anyone may `publish` a report that carries at least `threshold`
/// member signatures; the contract stores the value once per settlement and pays out the bonds
/// of the settlement's disputes as the report says. `publishBatch` publishes many reports under
/// one set of signatures over their EIP-712 batch, for expiry bursts.
///
/// Money (all ETH, all in this contract's balance):
/// - A disputer escrows a bond with `postBond(settlementId, disputeId)` before publication.
/// - A settlement's first bond reserves its possible reward from the free insurance pool:
///   `rewardBp` of that bond, capped by what is free (and by 2^72 − 1 wei). The reservation is
///   fixed from then until publication, so a node reads it at any block (`reservation`), and
///   one settlement's rewards never take another's.
/// - Each `BondOutcome` in the published report settles one escrow:
///   `bond = refund + pooled + burned`. The disputer is paid `refund + reward`. Outcomes are
///   applied in order against the settlement's budget: its reservation, plus each `pooled`
///   as it comes, minus each `reward`. What is left of the budget returns to the free pool.
/// - Burned ETH stays locked in this contract forever: no function can move it. It is counted
///   in `totalBurned`.
/// - An escrow the report does not mention (a dispute the committee refused) goes back to its
///   disputer through `reclaimBond` once the settlement is published.
/// - Payouts are pushed with a gas-capped call, only after every state change of the
///   transaction is done. If the call fails (the recipient reverts, runs out of gas, or tries
///   to re-enter: every external entry point holds a transient re-entry guard), the amount is
///   credited to the recipient, who takes it with `withdraw`. A recipient can never block a
///   publication, whatever code it has or later delegates to (EIP-7702).
///
/// Owner powers: ownership moves in two steps (`transferOwnership`, then `acceptOwnership`);
/// a new committee is proposed, announced by `CommitteeProposed`, and applies only
/// `committeeDelay` seconds later (`applyCommittee`, by anyone), until when the owner can
/// cancel it. A report is checked against the committee in force at publication: the contract
/// cannot know when a report's window closed without trusting the report itself, and the delay
/// leaves the old committee time to publish what it certified (set it above the hard deadline).
///
/// Invariant: `balance = pool + totalReserved + totalEscrowed + totalCredits + totalBurned`.
contract SettlementOracle is Ownable2Step, ReentrancyGuardTransient {
    // ------------------------------------------------------------------------------------
    // Types: field for field the structs of `proto/src/eip712.rs`.
    // ------------------------------------------------------------------------------------

    struct BondOutcome {
        bytes32 disputeId;
        address disputer;
        uint256 bond;
        uint256 refund;
        uint256 reward;
        uint256 pooled;
        uint256 burned;
    }

    struct FinalReport {
        bytes32 settlementId;
        uint256 value;
        uint32 round;
        BondOutcome[] outcomes;
    }

    /// One storage slot per settlement, so `publish` reads and writes the reservation with the
    /// status at no extra cost.
    struct Settlement {
        uint128 value;
        uint40 publishedAt;
        uint8 status;
        /// Whether a bond was posted (and the reservation made).
        bool bonded;
        /// The reward reserved for the settlement's disputes, wei, until publication.
        uint72 reserved;
    }

    /// One storage slot per escrow. 2^96 wei is far more ETH than exists.
    struct Escrow {
        address disputer;
        uint96 amount;
    }

    uint8 public constant STATUS_UNKNOWN = 0;
    uint8 public constant STATUS_PUBLISHED = 1;

    /// Gas forwarded with a pushed payout: enough for a contract wallet's receive hook, too
    /// little for a recipient to grief the publisher.
    uint256 public constant PAYOUT_GAS = 30_000;

    /// Bytes per signature in `publish`'s packed `signatures`: `r ‖ s ‖ v`.
    uint256 private constant SIGNATURE_LENGTH = 65;

    /// Bytes per report in `publishBatch`'s packed `reports`: id ‖ value (uint128) ‖ round.
    uint256 private constant PACKED_REPORT_LENGTH = 52;

    /// EIP-712's hash of an empty array (`keccak256("")`): a batched report's `outcomes`.
    bytes32 private constant EMPTY_ARRAY_HASH = keccak256("");

    /// secp256k1n / 2. Signatures with a larger `s` are refused (EIP-2), so each member has
    /// exactly one valid signature per report.
    uint256 private constant HALF_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    bytes32 public constant BOND_OUTCOME_TYPEHASH = keccak256(
        "BondOutcome(bytes32 disputeId,address disputer,uint256 bond,uint256 refund,uint256 reward,uint256 pooled,uint256 burned)"
    );
    bytes32 public constant FINAL_REPORT_TYPEHASH = keccak256(
        "FinalReport(bytes32 settlementId,uint256 value,uint32 round,BondOutcome[] outcomes)"
        "BondOutcome(bytes32 disputeId,address disputer,uint256 bond,uint256 refund,uint256 reward,uint256 pooled,uint256 burned)"
    );
    /// EIP-712 hashes `reports` as the keccak of its members' `hashStruct`s, concatenated.
    bytes32 public constant FINAL_REPORT_BATCH_TYPEHASH = keccak256(
        "FinalReportBatch(FinalReport[] reports)"
        "BondOutcome(bytes32 disputeId,address disputer,uint256 bond,uint256 refund,uint256 reward,uint256 pooled,uint256 burned)"
        "FinalReport(bytes32 settlementId,uint256 value,uint32 round,BondOutcome[] outcomes)"
    );
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");

    uint256 private immutable deployedChainId;
    bytes32 private immutable deployedDomainSeparator;

    // ------------------------------------------------------------------------------------
    // State
    // ------------------------------------------------------------------------------------

    /// The committee in force, as the code of a data contract (see `storeCommittee`).
    /// `threshold` shares the slot.
    address private committeeCode;
    /// How many members must sign a report.
    uint96 public threshold;

    /// A proposed committee (its data contract), its threshold, and when it may apply.
    address private pendingCommitteeCode;
    uint64 public pendingCommitteeEta;
    uint96 private pendingThreshold;

    /// Seconds between proposing a committee and its taking effect.
    uint256 public immutable committeeDelay;
    /// The reward of an upheld dispute, in basis points of its bond (reserved at first bond).
    uint256 public immutable rewardBp;

    mapping(bytes32 => Settlement) private settlements;
    mapping(bytes32 => mapping(bytes32 => Escrow)) private escrows;

    /// Free insurance pool, wei: what reservations draw from.
    uint256 public pool;
    /// Σ reservations of unpublished settlements, wei.
    uint256 public totalReserved;
    /// Σ escrowed bonds, wei.
    uint256 public totalEscrowed;
    /// Burned bond halves, wei, locked in this contract forever.
    uint256 public totalBurned;
    /// Payouts whose push failed, wei, waiting for `withdraw`.
    mapping(address => uint256) public credits;
    /// Σ credits, wei.
    uint256 public totalCredits;

    // ------------------------------------------------------------------------------------
    // Events
    // ------------------------------------------------------------------------------------

    event CommitteeProposed(address[] members, uint256 threshold, uint256 eta);
    event CommitteeCancelled(address[] members, uint256 threshold);
    event CommitteeSet(address[] members, uint256 threshold);
    event RewardReserved(bytes32 indexed settlementId, uint256 amount);
    event ReportPublished(bytes32 indexed settlementId, uint256 value, uint32 round);
    /// A report of a batch whose settlement was already published (by `publish` or another
    /// batch): left as it is, the rest of the batch published.
    event ReportSkipped(bytes32 indexed settlementId);
    event BondPosted(bytes32 indexed settlementId, bytes32 indexed disputeId, address indexed disputer, uint256 amount);
    event BondSettled(
        bytes32 indexed settlementId,
        bytes32 indexed disputeId,
        address indexed disputer,
        uint256 refund,
        uint256 reward,
        uint256 pooled,
        uint256 burned
    );
    event BondReclaimed(
        bytes32 indexed settlementId, bytes32 indexed disputeId, address indexed disputer, uint256 amount
    );
    event PoolFunded(address indexed from, uint256 amount);
    event PayoutCredited(address indexed to, uint256 amount);
    event Withdrawn(address indexed account, address to, uint256 amount);

    // ------------------------------------------------------------------------------------
    // Errors
    // ------------------------------------------------------------------------------------

    error NoPendingCommittee();
    error CommitteeNotDue(uint256 eta, uint256 now_);
    error RenounceDisabled();
    error CommitteeNotAscending(uint256 index);
    error CommitteeNotStored();
    error BadThreshold(uint256 threshold, uint256 members);
    error TooFewSignatures(uint256 have, uint256 need);
    error BadSignaturesLength(uint256 length);
    error BadSignature(uint256 index);
    error HighS(uint256 index);
    error SignersNotAscending(uint256 index);
    error SignerNotMember(address signer);
    error AlreadyPublished(bytes32 settlementId);
    error BadBatchLength(uint256 length);
    error NotPublished(bytes32 settlementId);
    error ValueTooLarge(uint256 value);
    error UnknownEscrow(bytes32 settlementId, bytes32 disputeId);
    error WrongDisputer(bytes32 disputeId, address escrowedBy, address reported);
    error WrongBond(bytes32 disputeId, uint256 escrowed, uint256 reported);
    error BondNotConserved(bytes32 disputeId);
    error PoolTooSmall(bytes32 disputeId, uint256 reward, uint256 available);
    error EscrowExists(bytes32 settlementId, bytes32 disputeId);
    error ZeroAmount();
    error BondTooLarge(uint256 amount);
    error NothingToWithdraw();
    error TransferFailed(address to, uint256 amount);

    // ------------------------------------------------------------------------------------
    // Owner
    // ------------------------------------------------------------------------------------

    /// Deploys with `initialOwner`, the first committee (`members` ascending, `threshold` more
    /// than two thirds of them), the delay of later committee changes, and the reward rate.
    constructor(
        address initialOwner,
        address[] memory members,
        uint256 committeeThreshold,
        uint256 committeeDelaySecs,
        uint256 rewardBasisPoints
    ) Ownable(initialOwner) {
        deployedChainId = block.chainid;
        deployedDomainSeparator = computeDomainSeparator();
        committeeDelay = committeeDelaySecs;
        rewardBp = rewardBasisPoints;
        committeeCode = storeCommittee(members, committeeThreshold);
        threshold = uint96(committeeThreshold);
        emit CommitteeSet(members, committeeThreshold);
    }

    /// Ownership is never given up: the committee could then never be replaced.
    function renounceOwnership() public view override onlyOwner {
        revert RenounceDisabled();
    }

    /// Proposes a new committee (`newMembers` strictly ascending, so distinct and never the
    /// zero address; `newThreshold` more than two thirds of them, so that two quorums always
    /// share an honest member). It applies `committeeDelay` seconds from now, through
    /// `applyCommittee`; until then the owner may cancel it. Replaces a pending proposal.
    function proposeCommittee(address[] calldata newMembers, uint256 newThreshold)
        external
        onlyOwner
        nonReentrant
    {
        pendingCommitteeCode = storeCommittee(newMembers, newThreshold);
        pendingThreshold = uint96(newThreshold);
        uint256 eta = block.timestamp + committeeDelay;
        pendingCommitteeEta = uint64(eta);
        emit CommitteeProposed(newMembers, newThreshold, eta);
    }

    /// Withdraws the pending committee.
    function cancelCommittee() external onlyOwner nonReentrant {
        address code = pendingCommitteeCode;
        if (code == address(0)) revert NoPendingCommittee();
        uint256 cancelled = pendingThreshold;
        clearPending();
        emit CommitteeCancelled(abi.decode(code.code, (address[])), cancelled);
    }

    /// Puts the pending committee in force once its delay has passed. Anyone may call it.
    function applyCommittee() external nonReentrant {
        address code = pendingCommitteeCode;
        if (code == address(0)) revert NoPendingCommittee();
        uint256 eta = pendingCommitteeEta;
        if (block.timestamp < eta) revert CommitteeNotDue(eta, block.timestamp);
        uint96 newThreshold = pendingThreshold;
        committeeCode = code;
        threshold = newThreshold;
        clearPending();
        emit CommitteeSet(abi.decode(code.code, (address[])), newThreshold);
    }

    /// The pending committee, its threshold and when it may apply (all zero if none).
    function getPendingCommittee() external view returns (address[] memory members, uint256, uint256) {
        address code = pendingCommitteeCode;
        if (code != address(0)) members = abi.decode(code.code, (address[]));
        return (members, pendingThreshold, pendingCommitteeEta);
    }

    function clearPending() private {
        pendingCommitteeCode = address(0);
        pendingThreshold = 0;
        pendingCommitteeEta = 0;
    }

    /// Checks a committee and stores it as the code of a data contract: the ABI encoding of the
    /// ascending `address[]` (its first byte is 0x00, STOP, so calling it does nothing). One
    /// EXTCODECOPY reads the whole committee for about 2,800 gas, where a mapping would cost a
    /// cold SLOAD (2,100 gas) per signer.
    function storeCommittee(address[] memory newMembers, uint256 newThreshold) private returns (address code) {
        uint256 n = newMembers.length;
        if (newThreshold == 0 || newThreshold > n || newThreshold * 3 <= n * 2) {
            revert BadThreshold(newThreshold, n);
        }
        for (uint256 i = 1; i < n; i++) {
            if (newMembers[i] <= newMembers[i - 1]) revert CommitteeNotAscending(i);
        }
        if (newMembers[0] == address(0)) revert CommitteeNotAscending(0);

        bytes memory data = abi.encode(newMembers);
        // Creation code that returns `data` as the new contract's code:
        // PUSH4 len, DUP1, PUSH1 14, PUSH1 0, CODECOPY, PUSH1 0, RETURN, then `data` (offset 14).
        bytes memory init = abi.encodePacked(hex"63", uint32(data.length), hex"80600e6000396000f3", data);
        assembly ("memory-safe") {
            code := create(0, add(init, 32), mload(init))
        }
        if (code == address(0)) revert CommitteeNotStored();
    }

    /// The committee, ascending, and the threshold.
    function getCommittee() public view returns (address[] memory members, uint256) {
        if (committeeCode != address(0)) members = abi.decode(committeeCode.code, (address[]));
        return (members, threshold);
    }

    function isMember(address account) external view returns (bool) {
        (address[] memory members,) = getCommittee();
        for (uint256 i = 0; i < members.length; i++) {
            if (members[i] == account) return true;
        }
        return false;
    }

    // ------------------------------------------------------------------------------------
    // Publication
    // ------------------------------------------------------------------------------------

    /// Publishes a settlement's final report and pays out its bond outcomes.
    /// `signatures` is the signatures packed back to back, 65 bytes each, `r ‖ s ‖ v` (v = 27
    /// or 28, low s), with no length prefixes or padding between them: at least `threshold`
    /// of them, by distinct members in strictly ascending order of address.
    function publish(FinalReport calldata report, bytes calldata signatures) external nonReentrant {
        Settlement storage settlement = settlements[report.settlementId];
        if (settlement.status != STATUS_UNKNOWN) revert AlreadyPublished(report.settlementId);
        if (report.value > type(uint128).max) revert ValueTooLarge(report.value);
        checkSignatures(hashReport(report), signatures);
        uint256 reserved = record(report.settlementId, report.value, report.round, settlement);
        BondOutcome[] calldata outcomes = report.outcomes;
        if (outcomes.length == 0 && reserved == 0) return;
        settleBonds(report.settlementId, outcomes, reserved);
        // Every state change is done: only now is anyone paid.
        for (uint256 i = 0; i < outcomes.length; ++i) {
            pay(outcomes[i].disputer, outcomes[i].refund + outcomes[i].reward);
        }
    }

    /// Publishes many settlements' final reports under one set of committee signatures over
    /// their EIP-712 `FinalReportBatch(FinalReport[] reports)` (`hashBatch`), `signatures`
    /// packed as for `publish`. For expiry bursts: a report with bond outcomes (a disputed
    /// settlement, rare) is published alone with `publish`; a batch carries reports with none.
    ///
    /// `reports` is packed, `PACKED_REPORT_LENGTH` (52) bytes per report, back to back:
    /// `settlementId` (32) ‖ `value` (16, a big-endian uint128) ‖ `round` (4, big-endian), each
    /// report standing for `FinalReport{settlementId, value, round, outcomes: []}`. Packing
    /// halves the calldata of the ABI form, which is most of what a batch costs beyond its
    /// storage slots and events.
    ///
    /// A report whose settlement is already published is skipped (`ReportSkipped`), not
    /// reverted: the committee signs one report per settlement, so it is the published one,
    /// and a front-run single `publish` cannot void the rest of the batch.
    ///
    /// A batched report settles no bond: as for a `publish`ed report without outcomes, the
    /// settlement's reservation returns to the free pool, and any escrow of it stays open for
    /// its disputer to take back with `reclaimBond` (the committee refused that dispute). No
    /// ETH moves in a batch.
    ///
    /// Why the EIP-712 array (the keccak of the reports' hashes, concatenated) and not a Merkle
    /// root: every report of the batch is in the calldata, so the contract hashes every leaf
    /// either way, and a tree would only add its inner hashes and a convention of its own. The
    /// array is plain typed data that any EIP-712 signer computes and can display.
    function publishBatch(bytes calldata reports, bytes calldata signatures) external nonReentrant {
        uint256 count = batchLength(reports);
        bytes32[] memory reportHashes = new bytes32[](count);
        // One pass records each report and hashes it; the signatures over the hashes are
        // checked after. Nothing here calls out of the contract, so a bad signature set reverts
        // every write and event of the pass, and one pass saves the second read of each report.
        for (uint256 i = 0; i < count; ++i) {
            (bytes32 id, uint128 value, uint32 round) = packedReport(reports, i);
            reportHashes[i] = batchedReportHash(id, value, round);
            Settlement storage settlement = settlements[id];
            if (settlement.status != STATUS_UNKNOWN) {
                emit ReportSkipped(id);
                continue;
            }
            uint256 reserved = record(id, value, round, settlement);
            // A bond was posted, and its dispute refused (its escrow goes back by
            // `reclaimBond`): the reservation returns to the pool.
            if (reserved != 0) {
                totalReserved -= reserved;
                pool += reserved;
            }
        }
        checkSignatures(batchDigest(reportHashes), signatures);
    }

    /// Stores an unpublished settlement's value and returns its reservation, now released to
    /// the caller to settle. Pays nothing.
    function record(bytes32 id, uint256 value, uint32 round, Settlement storage settlement)
        private
        returns (uint256 reserved)
    {
        reserved = settlement.reserved;
        settlement.value = uint128(value);
        settlement.publishedAt = uint40(block.timestamp);
        settlement.status = STATUS_PUBLISHED;
        settlement.reserved = 0;
        emit ReportPublished(id, value, round);
    }

    /// Applies every outcome to its escrow and the settlement's budget (its reservation, plus
    /// each `pooled`, minus each `reward`), then returns what is left of the budget to the free
    /// pool. Pays nothing.
    function settleBonds(bytes32 id, BondOutcome[] calldata outcomes, uint256 reserved) private {
        uint256 budget = reserved;
        uint256 burned = 0;
        uint256 released = 0;
        for (uint256 i = 0; i < outcomes.length; ++i) {
            BondOutcome calldata o = outcomes[i];
            Escrow memory escrow = escrows[id][o.disputeId];
            if (escrow.disputer == address(0)) revert UnknownEscrow(id, o.disputeId);
            if (escrow.disputer != o.disputer) revert WrongDisputer(o.disputeId, escrow.disputer, o.disputer);
            if (escrow.amount != o.bond) revert WrongBond(o.disputeId, escrow.amount, o.bond);
            // bond = refund + pooled + burned, written without a sum that could overflow.
            if (o.refund > o.bond || o.pooled > o.bond - o.refund || o.burned != o.bond - o.refund - o.pooled) {
                revert BondNotConserved(o.disputeId);
            }
            budget += o.pooled;
            if (o.reward > budget) revert PoolTooSmall(o.disputeId, o.reward, budget);
            budget -= o.reward;
            delete escrows[id][o.disputeId];
            burned += o.burned;
            released += o.bond;
            emit BondSettled(id, o.disputeId, o.disputer, o.refund, o.reward, o.pooled, o.burned);
        }
        if (reserved != 0) totalReserved -= reserved;
        if (budget != 0) pool += budget;
        if (burned != 0) totalBurned += burned;
        if (released != 0) totalEscrowed -= released;
    }

    function getSettlement(bytes32 id) external view returns (uint256 value, uint64 publishedAt, uint8 status) {
        Settlement memory settlement = settlements[id];
        return (settlement.value, settlement.publishedAt, settlement.status);
    }

    /// The reward reserved for a settlement's disputes: set by its first bond, fixed until
    /// publication (then 0). What a node caps the settlement's rewards by.
    function reservation(bytes32 id) external view returns (uint256) {
        return settlements[id].reserved;
    }

    /// The EIP-712 digest the members sign: `keccak256(0x1901 ‖ domainSeparator ‖ hashStruct)`.
    function hashReport(FinalReport calldata report) public view returns (bytes32) {
        return typedDigest(reportStructHash(report));
    }

    /// The EIP-712 digest of a packed batch of reports (see `publishBatch`), which
    /// `publishBatch` checks the signatures against: `hashStruct(FinalReportBatch{reports})`
    /// under the same domain, each report with no outcomes.
    function hashBatch(bytes calldata reports) public view returns (bytes32) {
        uint256 count = batchLength(reports);
        bytes32[] memory reportHashes = new bytes32[](count);
        for (uint256 i = 0; i < count; ++i) {
            (bytes32 id, uint128 value, uint32 round) = packedReport(reports, i);
            reportHashes[i] = batchedReportHash(id, value, round);
        }
        return batchDigest(reportHashes);
    }

    function batchDigest(bytes32[] memory reportHashes) private view returns (bytes32) {
        return typedDigest(keccak256(abi.encode(FINAL_REPORT_BATCH_TYPEHASH, hashWords(reportHashes))));
    }

    /// `hashStruct(FinalReport{id, value, round, outcomes: []})`, built in scratch memory past
    /// the free pointer rather than allocated per report.
    function batchedReportHash(bytes32 id, uint128 value, uint32 round) private pure returns (bytes32 reportHash) {
        (bytes32 typeHash, bytes32 noOutcomes) = (FINAL_REPORT_TYPEHASH, EMPTY_ARRAY_HASH);
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, typeHash)
            mstore(add(m, 32), id)
            mstore(add(m, 64), value)
            mstore(add(m, 96), round)
            mstore(add(m, 128), noOutcomes)
            reportHash := keccak256(m, 160)
        }
    }

    /// The number of reports in a packed batch, which must be a whole, non-zero number.
    function batchLength(bytes calldata reports) private pure returns (uint256 count) {
        count = reports.length / PACKED_REPORT_LENGTH;
        if (count == 0 || reports.length != count * PACKED_REPORT_LENGTH) revert BadBatchLength(reports.length);
    }

    /// Report number `index` of a packed batch the caller has measured (`batchLength`).
    function packedReport(bytes calldata reports, uint256 index)
        private
        pure
        returns (bytes32 id, uint128 value, uint32 round)
    {
        assembly ("memory-safe") {
            let p := add(reports.offset, mul(index, PACKED_REPORT_LENGTH))
            id := calldataload(p) // bytes 0..31
            value := shr(128, calldataload(add(p, 32))) // bytes 32..47
            round := shr(224, calldataload(add(p, 48))) // bytes 48..51
        }
    }

    function typedDigest(bytes32 structHash) private view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
    }

    /// `hashStruct(report)`.
    function reportStructHash(FinalReport calldata report) private pure returns (bytes32) {
        BondOutcome[] calldata outcomes = report.outcomes;
        bytes32[] memory outcomeHashes = new bytes32[](outcomes.length);
        for (uint256 i = 0; i < outcomes.length; ++i) {
            BondOutcome calldata o = outcomes[i];
            outcomeHashes[i] = keccak256(
                abi.encode(
                    BOND_OUTCOME_TYPEHASH, o.disputeId, o.disputer, o.bond, o.refund, o.reward, o.pooled, o.burned
                )
            );
        }
        return keccak256(
            abi.encode(FINAL_REPORT_TYPEHASH, report.settlementId, report.value, report.round, hashWords(outcomeHashes))
        );
    }

    /// EIP-712 hashes an array as the keccak of its members' hashes, concatenated: that is
    /// `keccak256(abi.encodePacked(words))`, here hashed in place instead of copied.
    function hashWords(bytes32[] memory words) private pure returns (bytes32 hash) {
        assembly ("memory-safe") {
            hash := keccak256(add(words, 32), shl(5, mload(words)))
        }
    }

    /// The EIP-712 domain `{name: "fixd", version: "1", chainId, verifyingContract: this}`.
    function domainSeparator() public view returns (bytes32) {
        return block.chainid == deployedChainId ? deployedDomainSeparator : computeDomainSeparator();
    }

    function computeDomainSeparator() private view returns (bytes32) {
        return keccak256(
            abi.encode(DOMAIN_TYPEHASH, keccak256("fixd"), keccak256("1"), block.chainid, address(this))
        );
    }

    /// Checks that `signatures` (packed, `SIGNATURE_LENGTH` bytes each) are at least
    /// `threshold` valid signatures of `digest` by distinct members, in ascending order of
    /// address. Every signature given is checked, not only the first `threshold`.
    function checkSignatures(bytes32 digest, bytes calldata signatures) private view {
        uint256 count = signatures.length / SIGNATURE_LENGTH;
        if (signatures.length != count * SIGNATURE_LENGTH) revert BadSignaturesLength(signatures.length);
        uint256 need = threshold;
        if (need == 0 || count < need) revert TooFewSignatures(count, need);
        address[] memory members = readCommittee();
        uint256 n = members.length;
        address previous = address(0);
        uint256 m = 0; // members[m] is the first member not yet passed
        // Unchecked: i < count and m <= n bound both counters.
        unchecked {
            for (uint256 i = 0; i < count; ++i) {
                address signer = recoverSigner(digest, signatures, i);
                // Strictly ascending: rules out a repeated signer without a set, and lets one
                // pass over the ascending committee find every signer.
                if (signer <= previous) revert SignersNotAscending(i);
                while (m < n && memberAt(members, m) < signer) ++m;
                if (m == n || memberAt(members, m) != signer) revert SignerNotMember(signer);
                previous = signer;
                ++m;
            }
        }
    }

    /// The committee as `setCommittee` stored it. The code of `committeeCode` is
    /// `abi.encode(members)`: a 32-byte offset (0x20), then the array exactly as memory lays
    /// one out (the length, then one word per member). Copying the code from byte 32 on into
    /// free memory therefore yields the `address[] memory` with no decoding pass. Only called
    /// once a committee is set (`threshold != 0`), so `committeeCode` has code.
    function readCommittee() private view returns (address[] memory members) {
        address code = committeeCode;
        assembly ("memory-safe") {
            let size := sub(extcodesize(code), 32) // 32 + 32 * members
            members := mload(0x40)
            extcodecopy(code, members, 32, size)
            mstore(0x40, add(members, size)) // allocate what was copied
        }
    }

    /// `members[m]` without Solidity's bounds check, which the caller has done (`m < n`).
    function memberAt(address[] memory members, uint256 m) private pure returns (address member) {
        assembly ("memory-safe") {
            member := mload(add(add(members, 32), shl(5, m))) // skip the length word
        }
    }

    /// The signer of signature number `index` in the packed `signatures`, which the caller has
    /// checked to hold more than `index` signatures.
    function recoverSigner(bytes32 digest, bytes calldata signatures, uint256 index)
        private
        pure
        returns (address)
    {
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly ("memory-safe") {
            let p := add(signatures.offset, mul(index, SIGNATURE_LENGTH))
            r := calldataload(p) // bytes 0..31
            s := calldataload(add(p, 32)) // bytes 32..63
            v := byte(0, calldataload(add(p, 64))) // byte 64
        }
        if (uint256(s) > HALF_ORDER) revert HighS(index);
        if (v != 27 && v != 28) revert BadSignature(index);
        address signer = ecrecover(digest, v, r, s);
        if (signer == address(0)) revert BadSignature(index);
        return signer;
    }

    // ------------------------------------------------------------------------------------
    // Bonds and the insurance pool
    // ------------------------------------------------------------------------------------

    /// Escrows `msg.value` as the bond of dispute `disputeId` against settlement
    /// `settlementId`. One escrow per (settlement, dispute), before publication only. The
    /// settlement's first bond reserves its reward budget from the free pool.
    function postBond(bytes32 settlementId, bytes32 disputeId) external payable nonReentrant {
        Settlement storage settlement = settlements[settlementId];
        if (settlement.status != STATUS_UNKNOWN) revert AlreadyPublished(settlementId);
        if (msg.value == 0) revert ZeroAmount();
        if (msg.value > type(uint96).max) revert BondTooLarge(msg.value);
        Escrow storage escrow = escrows[settlementId][disputeId];
        if (escrow.disputer != address(0)) revert EscrowExists(settlementId, disputeId);
        escrow.disputer = msg.sender;
        escrow.amount = uint96(msg.value);
        totalEscrowed += msg.value;
        emit BondPosted(settlementId, disputeId, msg.sender, msg.value);
        if (!settlement.bonded) {
            uint256 free = pool;
            uint256 reserve = msg.value * rewardBp / 10_000;
            if (reserve > free) reserve = free;
            if (reserve > type(uint72).max) reserve = type(uint72).max;
            settlement.bonded = true;
            settlement.reserved = uint72(reserve);
            pool = free - reserve;
            totalReserved += reserve;
            emit RewardReserved(settlementId, reserve);
        }
    }

    function getEscrow(bytes32 settlementId, bytes32 disputeId)
        external
        view
        returns (address disputer, uint256 amount)
    {
        Escrow memory escrow = escrows[settlementId][disputeId];
        return (escrow.disputer, escrow.amount);
    }

    /// Returns an escrow that the published report did not settle (a refused dispute) to its
    /// disputer. Anyone may call it.
    function reclaimBond(bytes32 settlementId, bytes32 disputeId) external nonReentrant {
        if (settlements[settlementId].status == STATUS_UNKNOWN) revert NotPublished(settlementId);
        Escrow memory escrow = escrows[settlementId][disputeId];
        if (escrow.disputer == address(0)) revert UnknownEscrow(settlementId, disputeId);
        delete escrows[settlementId][disputeId];
        totalEscrowed -= escrow.amount;
        emit BondReclaimed(settlementId, disputeId, escrow.disputer, escrow.amount);
        pay(escrow.disputer, escrow.amount);
    }

    /// Adds `msg.value` to the free insurance pool.
    function fundPool() external payable nonReentrant {
        if (msg.value == 0) revert ZeroAmount();
        pool += msg.value;
        emit PoolFunded(msg.sender, msg.value);
    }

    /// Sends the caller's credited payouts to `to`.
    function withdraw(address payable to) external nonReentrant {
        uint256 amount = credits[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        credits[msg.sender] = 0;
        totalCredits -= amount;
        emit Withdrawn(msg.sender, to, amount);
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }

    /// Pushes `amount` to `to` with `PAYOUT_GAS` and no return data copied; on failure credits
    /// it for `withdraw`. Called only once every other state change of the transaction is done.
    function pay(address to, uint256 amount) private {
        if (amount == 0) return;
        bool ok;
        uint256 gasLimit = PAYOUT_GAS;
        assembly ("memory-safe") {
            ok := call(gasLimit, to, amount, 0, 0, 0, 0)
        }
        if (!ok) {
            credits[to] += amount;
            totalCredits += amount;
            emit PayoutCredited(to, amount);
        }
    }
}
