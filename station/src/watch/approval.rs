//! Which trains waiting for approval the watcher approves itself: under manual approval, those
//! whose creator or exact image digest the operator listed. Everything else waits for
//! `station approve` or `station reject`.

use super::WatchSection;
use route_wire::{Approval, InboxItem};

/// Why a waiting train may run without its operator, if it may.
pub fn auto_approval(cfg: &WatchSection, item: &InboxItem) -> Option<String> {
    if cfg.approval == Approval::Auto {
        // The service was told `auto` at start; a train still waiting was delivered before.
        return Some("this station approves every train ([watch] approval = \"auto\")".into());
    }
    if cfg.auto_approve_creators.contains(&item.creator) {
        return Some(format!(
            "creator {} is in [watch] auto_approve_creators",
            item.creator
        ));
    }
    let digest = item.digest();
    cfg.auto_approve_digests
        .iter()
        .any(|d| !digest.is_empty() && d == digest)
        .then(|| format!("image {digest} is in [watch] auto_approve_digests"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use route_wire::{Format, HopState};

    fn item(creator: &str, image: &str) -> InboxItem {
        InboxItem {
            train: "t".into(),
            creator: creator.into(),
            format: Format::Native,
            route: vec!["s".into()],
            index: 0,
            state: HopState::AwaitingApproval,
            image: image.into(),
            push_to: "r/s/outbox:t".into(),
        }
    }

    #[test]
    fn manual_approval_lets_through_only_listed_creators_and_exact_digests() {
        let cfg = WatchSection {
            approval: Approval::Manual,
            auto_approve_creators: vec!["alice".into()],
            auto_approve_digests: vec!["sha256:aa".into()],
            ..WatchSection::default()
        };
        assert!(auto_approval(&cfg, &item("alice", "r/s/inbox@sha256:ff")).is_some());
        assert!(auto_approval(&cfg, &item("mallory", "r/s/inbox@sha256:aa")).is_some());
        // Not a prefix, not a tag, not a creator whose name contains a listed one.
        assert!(auto_approval(&cfg, &item("mallory", "r/s/inbox@sha256:a")).is_none());
        assert!(auto_approval(&cfg, &item("mallory", "r/s/inbox:sha256:aa")).is_none());
        assert!(auto_approval(&cfg, &item("alice2", "r/s/inbox@sha256:ff")).is_none());
        let auto = WatchSection::default();
        assert!(auto_approval(&auto, &item("anyone", "r/s/inbox@sha256:ff")).is_some());
    }
}
