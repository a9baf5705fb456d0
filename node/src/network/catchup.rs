//! Catch-up: the request-response protocol `/fixd/catchup/1`, by which a node that restarted or
//! was cut off asks a peer for what it holds on one settlement (DESIGN section 5.7).
//!
//! Request and response are BCS, each written whole on its own stream and read up to a size
//! limit (1 KiB for the request, [`P2pConfig::max_catchup_bytes`](super::P2pConfig) for the
//! response). The messages in a response are signed by their authors; the caller runs each
//! through [`verdict_on`](super::validation::verdict_on) before use, exactly as if it had
//! been gossiped.

use std::io;

use fixd_proto::eip712::ReportSignature;
use fixd_proto::encoding::{from_bcs, to_bcs};
use fixd_proto::signing::Signed;
use fixd_proto::types::certificate::{Certificate, RoundProposal, Vote};
use fixd_proto::types::dispute::{RelayedDispute, RelayedRuling, ReviewVote};
use fixd_proto::types::observation::Observation;
use fixd_proto::types::settlement::SettlementId;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use serde::{Deserialize, Serialize};

use super::messages::GossipMessage;

/// The protocol name.
pub const CATCHUP_PROTOCOL: StreamProtocol = StreamProtocol::new("/fixd/catchup/1");

/// Largest catch-up request, bytes (a request is one settlement id: 32 bytes).
pub const MAX_REQUEST_BYTES: u64 = 1024;

/// "Send me what you hold on this settlement."
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatchupRequest {
    pub settlement_id: SettlementId,
}

/// The signed messages a peer holds on one settlement. Unverified until the caller checks them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatchupResponse {
    pub observations: Vec<Signed<Observation>>,
    pub proposals: Vec<Signed<RoundProposal>>,
    pub votes: Vec<Signed<Vote>>,
    pub report_signatures: Vec<Signed<ReportSignature>>,
    pub disputes: Vec<Signed<RelayedDispute>>,
    pub review_votes: Vec<Signed<ReviewVote>>,
    pub rulings: Vec<Signed<RelayedRuling>>,
    /// The decisions the peer holds (the first value, reviews): each is checked against the
    /// inputs it lists, so a member that missed a decision's precommits still learns it.
    pub certificates: Vec<Certificate>,
}

impl CatchupResponse {
    /// The messages as if gossiped (certificates are not gossip; take them first): observations first, then disputes, review votes,
    /// proposals, votes, rulings and report signatures, so that what a message refers to comes
    /// before it.
    pub fn into_messages(self) -> Vec<GossipMessage> {
        let observations = self.observations.into_iter().map(GossipMessage::Observation);
        let disputes = self.disputes.into_iter().map(GossipMessage::dispute);
        let reviews = self.review_votes.into_iter().map(GossipMessage::ReviewVote);
        let proposals = self.proposals.into_iter().map(GossipMessage::proposal);
        let votes = self.votes.into_iter().map(GossipMessage::Vote);
        let rulings = self.rulings.into_iter().map(GossipMessage::Ruling);
        let reports = self.report_signatures.into_iter().map(GossipMessage::ReportSignature);
        observations
            .chain(disputes)
            .chain(reviews)
            .chain(proposals)
            .chain(votes)
            .chain(rulings)
            .chain(reports)
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.observations.is_empty()
            && self.proposals.is_empty()
            && self.votes.is_empty()
            && self.report_signatures.is_empty()
            && self.disputes.is_empty()
            && self.review_votes.is_empty()
            && self.rulings.is_empty()
            && self.certificates.is_empty()
    }
}

/// What the node supplies to answer catch-up requests, usually from its store. It is called on
/// a blocking thread, so it may read the disk.
pub trait CatchupProvider: Send + Sync {
    fn catch_up(&self, settlement_id: &SettlementId) -> CatchupResponse;

    /// The answer to `asker`'s request: the same for every peer, except from a Byzantine
    /// member in the end-to-end tests (`crate::byzantine`), which shows some peers less.
    fn catch_up_for(&self, asker: &libp2p::PeerId, settlement_id: &SettlementId) -> CatchupResponse {
        let _ = asker;
        self.catch_up(settlement_id)
    }
}

/// A provider that holds nothing (a node with no store, or tests).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoCatchup;

impl CatchupProvider for NoCatchup {
    fn catch_up(&self, _: &SettlementId) -> CatchupResponse {
        CatchupResponse::default()
    }
}

/// BCS over a stream, read to its end with a size limit.
#[derive(Clone, Debug)]
pub struct CatchupCodec {
    pub max_response_bytes: u64,
}

async fn read_limited<T, M>(io: &mut T, limit: u64) -> io::Result<M>
where
    T: AsyncRead + Unpin + Send,
    M: serde::de::DeserializeOwned,
{
    let mut bytes = Vec::new();
    io.take(limit + 1).read_to_end(&mut bytes).await?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("catch-up message over {limit} bytes"),
        ));
    }
    from_bcs(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

async fn write_whole<T: AsyncWrite + Unpin + Send>(io: &mut T, bytes: Vec<u8>) -> io::Result<()> {
    io.write_all(&bytes).await?;
    io.close().await
}

impl libp2p::request_response::Codec for CatchupCodec {
    type Protocol = StreamProtocol;
    type Request = CatchupRequest;
    type Response = CatchupResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<CatchupRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_limited(io, MAX_REQUEST_BYTES).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<CatchupResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_limited(io, self.max_response_bytes).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: CatchupRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_whole(io, to_bcs(&req)).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: CatchupResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let bytes = to_bcs(&res);
        if bytes.len() as u64 > self.max_response_bytes {
            // The peer would refuse it; fail here so the log names the side at fault.
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "catch-up response of {} bytes over the {}-byte limit",
                    bytes.len(),
                    self.max_response_bytes
                ),
            ));
        }
        write_whole(io, bytes).await
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::B256;
    use libp2p::request_response::Codec;

    use super::*;
    use crate::network::validation::tests::{key, observation};

    #[tokio::test]
    async fn codec_round_trips_and_enforces_the_limit() {
        let GossipMessage::Observation(obs) = observation(&key(0), 1) else { unreachable!() };
        let response = CatchupResponse { observations: vec![obs], ..Default::default() };
        let mut codec = CatchupCodec { max_response_bytes: 10_000 };
        let mut buf = futures::io::Cursor::new(Vec::new());
        codec.write_response(&CATCHUP_PROTOCOL, &mut buf, response.clone()).await.unwrap();
        let mut read = futures::io::Cursor::new(buf.into_inner());
        let back = codec.read_response(&CATCHUP_PROTOCOL, &mut read).await.unwrap();
        assert_eq!(back, response);

        let mut small = CatchupCodec { max_response_bytes: 10 };
        let mut read = futures::io::Cursor::new(read.into_inner());
        let err = small.read_response(&CATCHUP_PROTOCOL, &mut read).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);

        let req = CatchupRequest { settlement_id: B256::repeat_byte(3) };
        let mut buf = futures::io::Cursor::new(Vec::new());
        codec.write_request(&CATCHUP_PROTOCOL, &mut buf, req.clone()).await.unwrap();
        let mut read = futures::io::Cursor::new(buf.into_inner());
        assert_eq!(codec.read_request(&CATCHUP_PROTOCOL, &mut read).await.unwrap(), req);
    }
}
