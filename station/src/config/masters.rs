//! `policy.allowed_masters`, parsed once when the configuration is read: each entry is either
//! a pinned image (`registry/repository@sha256:…`) or a repository path that allows itself
//! and what lies under it, by whole path segments.

use train_image::ImageRef;

/// One entry of `policy.allowed_masters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterRule {
    /// `registry/repository@digest`: that image only.
    Pinned(ImageRef),
    /// `registry/path`: that repository and every repository under it (`reg/master/python`
    /// allows `reg/master/python/3.11`, never `reg/master/python-evil`).
    Under {
        /// `host[:port]`.
        registry: String,
        /// The repository path, without a trailing `/`.
        path: String,
    },
}

impl MasterRule {
    /// Parses an entry; the error says what a valid one looks like.
    pub fn parse(entry: &str) -> Result<MasterRule, String> {
        let bad = |why: String| {
            format!(
                "policy.allowed_masters entry {entry:?}: {why} (write `registry/path` or `registry/repository@sha256:…`)"
            )
        };
        if entry.contains('@') {
            let r: ImageRef = entry.parse().map_err(|e| bad(format!("{e}")))?;
            if r.digest().is_none() || r.tag().is_some() {
                return Err(bad("a pinned entry names a digest and no tag".into()));
            }
            return Ok(MasterRule::Pinned(r));
        }
        let trimmed = entry.trim_end_matches('/');
        // A path parses as a tagless reference; `:latest` is what the parser adds, never
        // something an entry may carry (a tag would pin nothing).
        let r: ImageRef = format!("{trimmed}:latest")
            .parse()
            .map_err(|e| bad(format!("{e}")))?;
        if trimmed.is_empty() || format!("{}/{}", r.registry(), r.repository()) != trimmed {
            return Err(bad("not a registry and repository path".into()));
        }
        Ok(MasterRule::Under {
            registry: r.registry().to_string(),
            path: r.repository().to_string(),
        })
    }

    /// Whether the rule allows `master` resolved to `digest`.
    pub fn allows(&self, master: &ImageRef, digest: &str) -> bool {
        match self {
            MasterRule::Pinned(p) => {
                p.registry() == master.registry()
                    && p.repository() == master.repository()
                    && p.digest() == Some(digest)
            }
            MasterRule::Under { registry, path } => {
                registry == master.registry()
                    && master
                        .repository()
                        .strip_prefix(path.as_str())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_that_are_not_a_registry_path_or_a_pinned_image_are_refused() {
        for bad in [
            "",
            "/",
            "reg:5000/master@latest",
            "reg:5000/master:3.11",
            "reg:5000/Master",
            "reg:5000/m@sha256:zz",
        ] {
            assert!(MasterRule::parse(bad).is_err(), "{bad:?}");
        }
    }
}
