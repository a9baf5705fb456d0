//! Faults a test can switch on in a node, to prove that the honest members catch them or
//! survive them. Compiled only with the cargo feature `test-faults`, which only the end-to-end
//! tests enable (as a dev-dependency feature of the `fixd` package); the release build, the
//! Docker image and `scripts/devnet.sh` build without it, and there every function here is a
//! no-op that reads no environment variable.
//!
//! | `FIXD_TEST_FAULT` | where | what the node does |
//! |---|---|---|
//! | `wrong-median` | the settlement service, when it signs a round proposal it leads | proposes the median plus 1 wei |
//! | `stall-after-review-vote` | the settlement service, after its review vote is durable | its task hangs before gossiping the vote |
//! | `stall-before-publish` | the chain service, before sending `publish` | its task hangs, as if killed mid-publication |

use fixd_proto::types::certificate::Proposal;

/// The fault switched on for this process, if any.
/// Whether fault `name` is switched on; if so, logs `test fault: {doing}` (tests wait for it).
#[cfg(feature = "test-faults")]
fn active(name: &str, doing: &str) -> bool {
    let on = std::env::var("FIXD_TEST_FAULT").as_deref() == Ok(name);
    if on {
        tracing::warn!(fault = name, "test fault: {doing}");
    }
    on
}

#[cfg(not(feature = "test-faults"))]
fn active(_name: &str, _doing: &str) -> bool {
    false
}

/// `wrong-median`: the proposal as this node signs it.
pub fn tamper(mut proposal: Proposal) -> Proposal {
    if active("wrong-median", "proposing a wrong median") {
        proposal.value = fixd_proto::value::Wad::from_raw(proposal.value.raw().saturating_add(1));
    }
    proposal
}

/// `stall-after-review-vote`: never returns when on (only this task hangs; the runtime runs on).
pub async fn after_review_vote() {
    if active("stall-after-review-vote", "stalling after the review vote") {
        std::future::pending::<()>().await;
    }
}

/// `stall-before-publish`: never returns when on.
pub async fn before_send() {
    if active("stall-before-publish", "stalling before sending the publish transaction") {
        std::future::pending::<()>().await;
    }
}
