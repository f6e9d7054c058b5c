use super::ImageError;
use oci_client::Reference;
use std::fmt;
use std::str::FromStr;

/// An image reference (`registry/repo:tag` or `registry/repo@sha256:…`).
///
/// Unlike Docker, a reference without a registry is refused: a station must never guess
/// Docker Hub for a train.
#[derive(Clone, PartialEq, Eq)]
pub struct ImageRef(Reference);

impl ImageRef {
    /// The wrapped `oci-client` reference.
    pub fn inner(&self) -> &Reference {
        &self.0
    }
    /// `host[:port]`.
    pub fn registry(&self) -> &str {
        self.0.registry()
    }
    /// The repository path.
    pub fn repository(&self) -> &str {
        self.0.repository()
    }
    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.0.tag()
    }
    /// The digest, if any.
    pub fn digest(&self) -> Option<&str> {
        self.0.digest()
    }
    /// `registry/repository:tag`, checked as any reference is.
    pub fn tagged(registry: &str, repository: &str, tag: &str) -> Result<ImageRef, ImageError> {
        format!("{registry}/{repository}:{tag}").parse()
    }

    /// The same repository pinned to `digest`.
    pub fn with_digest(&self, digest: &str) -> ImageRef {
        ImageRef(Reference::with_digest(
            self.registry().to_string(),
            self.repository().to_string(),
            digest.to_string(),
        ))
    }
    /// The same repository with `tag`.
    pub fn with_tag(&self, tag: &str) -> ImageRef {
        ImageRef(Reference::with_tag(
            self.registry().to_string(),
            self.repository().to_string(),
            tag.to_string(),
        ))
    }
    /// Whether the registry is on this machine (spoken to over plain HTTP, as Docker does).
    pub fn is_loopback(&self) -> bool {
        super::auth::is_loopback_host(self.registry())
    }
}

/// The tag of a train's image after stop `index` of `route`: the next station's id, or `done`
/// after the last stop. Station and route service name the next image the same way.
pub fn next_stop_tag(route: &[String], index: usize) -> String {
    route
        .get(index + 1)
        .map_or_else(|| "done".to_string(), |s| tag_for(s))
}

/// A tag from a station id: Docker tags allow `[A-Za-z0-9_.-]`, at most 128 characters, not
/// starting with `.` or `-`. (Native station ids are already tags; legacy ids may not be.)
pub fn tag_for(station: &str) -> String {
    let t: String = station
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(128)
        .collect();
    if t.starts_with(['.', '-']) || t.is_empty() {
        format!("s{t}")
    } else {
        t
    }
}

impl std::hash::Hash for ImageRef {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.to_string().hash(h)
    }
}

impl FromStr for ImageRef {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<Self, ImageError> {
        let err = |reason: &str| ImageError::Reference {
            reference: s.to_string(),
            reason: reason.to_string(),
        };
        let first = s.split('/').next().unwrap_or_default();
        let has_registry =
            s.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
        if !has_registry {
            return Err(err(
                "name the registry explicitly (e.g. 127.0.0.1:5001/trains/t1:latest)",
            ));
        }
        let r = Reference::from_str(s).map_err(|e| err(&e.to_string()))?;
        Ok(ImageRef(r))
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.whole())
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_docker_safe() {
        assert_eq!(tag_for("hospital-a"), "hospital-a");
        assert_eq!(tag_for("2"), "2");
        assert_eq!(tag_for("a/b:c"), "a_b_c");
        assert_eq!(tag_for("-x"), "s-x");
        let route = vec!["a".to_string(), "b".to_string()];
        assert_eq!(next_stop_tag(&route, 0), "b");
        assert_eq!(next_stop_tag(&route, 1), "done");
    }

    #[test]
    fn registry_must_be_explicit_and_loopback_is_detected() {
        assert!(matches!(
            "trains/t1:latest".parse::<ImageRef>(),
            Err(ImageError::Reference { .. })
        ));
        assert!(matches!(
            "busybox".parse::<ImageRef>(),
            Err(ImageError::Reference { .. })
        ));
        let r: ImageRef = "127.0.0.1:5001/trains/t1:stop-1".parse().unwrap();
        assert!(r.is_loopback());
        assert_eq!(r.repository(), "trains/t1");
        assert_eq!(r.tag(), Some("stop-1"));
        let r: ImageRef = "registry.example.org/a/b@sha256:0123456789012345678901234567890123456789012345678901234567890123"
            .parse()
            .unwrap();
        assert!(!r.is_loopback());
        assert!(r.digest().is_some());
        assert!("localhost:5000/x:1"
            .parse::<ImageRef>()
            .unwrap()
            .is_loopback());
    }
}
