//! Which trains waiting for approval the watcher approves itself: under manual approval, those
//! whose creator or exact image digest the operator listed. Everything else waits for
//! `station approve` or `station reject`.

use super::item::Item;
use super::WatchSection;
use route_wire::Approval;

/// Why a waiting train may run without its operator, if it may.
pub fn auto_approval(cfg: &WatchSection, item: &Item) -> Option<String> {
    if cfg.approval == Approval::Auto {
        // The service was told `auto` at start; a train still waiting was delivered before.
        return Some("this station approves every train ([watch] approval = \"auto\")".into());
    }
    if cfg.auto_approve_creators.contains(&item.raw.creator) {
        return Some(format!(
            "creator {} is in [watch] auto_approve_creators",
            item.raw.creator
        ));
    }
    cfg.auto_approve_digests
        .contains(&item.digest)
        .then(|| format!("image {} is in [watch] auto_approve_digests", item.digest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use route_wire::{Digest, Format, HopState, InboxItem};

    fn d(c: char) -> Digest {
        Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
    }

    fn item(creator: &str, digest: &Digest) -> Item {
        Item::parse(
            InboxItem {
                train: "t".parse().unwrap(),
                creator: creator.parse().unwrap(),
                format: Format::Native,
                route: vec!["s".parse().unwrap()],
                index: 0,
                state: HopState::AwaitingApproval,
                image: format!("r.example/s/inbox@{digest}"),
                push_to: "r.example/s/outbox:t".into(),
            },
            &["r.example".into()],
        )
        .unwrap()
    }

    #[test]
    fn manual_approval_lets_through_only_listed_creators_and_exact_digests() {
        let cfg = WatchSection {
            approval: Approval::Manual,
            auto_approve_creators: vec!["alice".parse().unwrap()],
            auto_approve_digests: vec![d('a')],
            ..WatchSection::default()
        };
        assert!(auto_approval(&cfg, &item("alice", &d('f'))).is_some());
        assert!(auto_approval(&cfg, &item("mallory", &d('a'))).is_some());
        // Not another digest, not a creator whose name contains a listed one.
        assert!(auto_approval(&cfg, &item("mallory", &d('b'))).is_none());
        assert!(auto_approval(&cfg, &item("alice2", &d('f'))).is_none());
        let auto = WatchSection::default();
        assert!(auto_approval(&auto, &item("anyone", &d('f'))).is_some());
    }
}
