//! The gossip topics of [`GossipMessage`] (defined in `fixd-proto`), one per kind plus one for
//! [`fixd_proto::gossip::GossipBundle`]s of many messages, and the content-addressed message id.

use alloy_primitives::{B256, keccak256};
pub use fixd_proto::gossip::{GossipMessage, MessageKind};
use libp2p::gossipsub::{IdentTopic, MessageId, TopicHash};

/// The gossip topics of one network: `fixd/<first 8 bytes of network_id, hex>/<kind>`.
///
/// The network id in the name keeps two networks that share peers (a devnet beside a testnet)
/// from ever meshing their messages; the signatures commit to the full id anyway.
#[derive(Clone, Debug)]
pub struct Topics {
    topics: [(MessageKind, IdentTopic); MessageKind::ALL.len()],
    bundles: IdentTopic,
}

impl Topics {
    pub fn new(network_id: &B256) -> Self {
        let short = hex::encode(&network_id[..8]);
        let topic =
            |kind: MessageKind| (kind, IdentTopic::new(format!("fixd/{short}/{}", kind.topic_suffix())));
        Topics {
            topics: MessageKind::ALL.map(topic),
            bundles: IdentTopic::new(format!("fixd/{short}/bundles")),
        }
    }

    /// The topic of bundles: many messages of any kinds in one gossipsub message.
    pub fn bundles(&self) -> &IdentTopic {
        &self.bundles
    }

    pub fn is_bundles(&self, hash: &TopicHash) -> bool {
        &self.bundles.hash() == hash
    }

    pub fn topic(&self, kind: MessageKind) -> &IdentTopic {
        &self.topics.iter().find(|(k, _)| *k == kind).expect("every kind has a topic").1
    }

    /// The kind carried on a topic, or `None` for a topic that is not ours.
    pub fn kind_of(&self, hash: &TopicHash) -> Option<MessageKind> {
        self.topics.iter().find(|(_, t)| &t.hash() == hash).map(|(k, _)| *k)
    }

    /// Every topic of the network, the bundles' included.
    pub fn iter(&self) -> impl Iterator<Item = &IdentTopic> {
        self.topics.iter().map(|(_, t)| t).chain(std::iter::once(&self.bundles))
    }
}

/// The gossipsub message id: `keccak256(data)`. Content-addressed, so the same bytes published
/// by two members, or twice by one, are one message to the mesh.
pub fn message_id(data: &[u8]) -> MessageId {
    MessageId::new(keccak256(data).as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_carry_the_network_and_kind() {
        let topics = Topics::new(&B256::repeat_byte(0xab));
        assert_eq!(topics.topic(MessageKind::Vote).to_string(), "fixd/abababababababab/votes");
        let hash = topics.topic(MessageKind::Proposal).hash();
        assert_eq!(topics.kind_of(&hash), Some(MessageKind::Proposal));
        assert_eq!(topics.kind_of(&TopicHash::from_raw("other")), None);
        assert_eq!(topics.bundles().to_string(), "fixd/abababababababab/bundles");
        assert!(topics.is_bundles(&topics.bundles().hash()));
        assert_eq!(topics.kind_of(&topics.bundles().hash()), None);
        assert_eq!(topics.iter().count(), MessageKind::ALL.len() + 1);
    }
}
