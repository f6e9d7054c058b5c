//! An inbox item as the watcher uses it: its references parsed once, where it enters, and
//! the train stop it is.

use route_wire::{Digest, InboxItem, TrainId};
use train_image::ImageRef;

/// An inbox item, its references parsed once.
#[derive(Debug, Clone)]
pub struct Item {
    /// As the service sent it.
    pub raw: InboxItem,
    /// What to pull, pinned.
    pub image: ImageRef,
    /// Its digest.
    pub digest: Digest,
    /// Where to push the next state.
    pub push_to: ImageRef,
}

impl Item {
    /// Parses the references of `raw`; why it cannot be used otherwise (the service gave a
    /// reference that does not parse or is not pinned, or on a registry that is not one of
    /// `registries`: the station's API key goes to those only, and a hostile route service
    /// that named its own host collected it).
    pub fn parse(raw: InboxItem, registries: &[String]) -> Result<Self, String> {
        let image: ImageRef = raw
            .image
            .parse()
            .map_err(|e| format!("the inbox image `{}`: {e}", raw.image))?;
        let digest = image
            .digest()
            .ok_or_else(|| format!("the inbox image `{}` is not pinned by digest", raw.image))
            .and_then(|d| Digest::parse(d).map_err(|e| e.to_string()))?;
        let push_to: ImageRef = raw
            .push_to
            .parse()
            .map_err(|e| format!("the outbox `{}`: {e}", raw.push_to))?;
        for (what, r) in [("inbox image", &image), ("outbox", &push_to)] {
            if !registries.iter().any(|h| h == r.registry()) {
                return Err(format!(
                    "the {what} is on {}, which is not one of this station's registries ([watch] registries = {registries:?}): refused, and no credentials were sent there",
                    r.registry().escape_debug()
                ));
            }
        }
        Ok(Self {
            raw,
            image,
            digest,
            push_to,
        })
    }

    /// The train.
    pub fn train(&self) -> &TrainId {
        &self.raw.train
    }

    /// This stop.
    pub fn stop(&self) -> Stop {
        Stop {
            train: self.raw.train.clone(),
            index: self.raw.index,
        }
    }
}

/// One train stop at this station: the train and its position on the route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Stop {
    /// The train.
    pub train: TrainId,
    /// Its index on the route.
    pub index: usize,
}

impl std::fmt::Display for Stop {
    /// `train#index`, the key of the state file.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}#{}", self.train, self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use route_wire::{Format, HopState};

    #[test]
    fn items_with_references_that_do_not_parse_are_refused_with_why() {
        let d = format!("sha256:{}", "a".repeat(64));
        let mut raw = InboxItem {
            train: "t1".parse().unwrap(),
            creator: "alice".parse().unwrap(),
            format: Format::Native,
            route: vec!["s1".parse().unwrap()],
            index: 0,
            state: HopState::Delivered,
            image: format!("127.0.0.1:5000/s1/inbox@{d}"),
            push_to: "127.0.0.1:5000/s1/outbox:t1".into(),
        };
        let regs = ["127.0.0.1:5000".to_string()];
        assert_eq!(Item::parse(raw.clone(), &regs).unwrap().digest, d.as_str());
        let good = raw.clone();
        raw.image = "127.0.0.1:5000/s1/inbox:t1".into();
        assert!(Item::parse(raw.clone(), &regs)
            .unwrap_err()
            .contains("not pinned"));
        raw.image = "inbox".into();
        assert!(Item::parse(raw, &regs).unwrap_err().contains("inbox image"));
        // Hole 3: an item on a host the station did not configure (a hostile route service
        // naming its own) is refused before anything is sent there.
        let mut evil = good.clone();
        evil.image = format!("evil.example.org:5000/s1/inbox@{d}");
        let e = Item::parse(evil, &regs).unwrap_err();
        assert!(
            e.contains("evil.example.org:5000")
                && e.contains("not one of this station's registries"),
            "{e}"
        );
        let mut evil = good;
        evil.push_to = "127.0.0.2:5000/s1/outbox:t1".into();
        assert!(Item::parse(evil, &regs)
            .unwrap_err()
            .contains("the outbox is on 127.0.0.2:5000"));
    }
}
