//! How many connections the service serves at once, from the process's file limit.
//!
//! Every connection holds a file descriptor. The cap once was a fixed 768, chosen under the
//! common 1,024 soft limit (1,100 idle connections at that limit had stopped `accept`). Under
//! `route-bench` (200 stations long-polling, 500 dashboards following feeds, the registries'
//! token requests: ~900 at once) that fixed cap closed stations' token requests at accept
//! ("connection reset by peer"), although the host allowed 20,000 files. So the cap follows
//! the limit: the binary raises its soft limit to the hard one at start, and the service
//! serves the limit less [`RESERVED`] descriptors (the database, the registries' and movers'
//! connections, submissions' scratch files), at most [`DERIVED_MAX`] unless configured.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Descriptors kept for everything but served connections: the database pool (8 SQLite,
/// 16 PostgreSQL), the movers (16 by default, a few connections each), the clients of each
/// registry, files of submissions in progress. 1,024 − 256 = the former fixed cap.
pub const RESERVED: u64 = 256;
/// The cap when none is configured and the file limit is higher. Each idle connection costs
/// hyper's buffers (~16–32 KiB): 16,384 of them stay near half a GiB.
pub const DERIVED_MAX: usize = 16_384;
/// Below this a station cannot hold its feed and long-poll beside a few callers.
pub const MIN: usize = 16;

/// A configured cap that the file limit cannot hold.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CapacityError {
    /// `max_connections` plus the reserve exceeds the soft file limit.
    #[error("max_connections = {configured} does not fit under this process's file limit ({limit} open files, {RESERVED} of them kept for the database, registries and movers): raise the limit (LimitNOFILE= in the systemd unit, `ulimit -n`, or the container's nofile ulimit) or lower max_connections to at most {fits}")]
    OverFileLimit {
        /// The configured cap.
        configured: usize,
        /// The soft limit.
        limit: u64,
        /// The highest cap that fits.
        fits: usize,
    },
}

/// The soft limit on open files (`None`: unlimited).
pub fn file_limit() -> Option<u64> {
    getrlimit(Resource::Nofile).current
}

/// Raises the soft limit on open files to the hard one, as servers do at start (the soft
/// limit exists for programs that never asked); returns (before, after). Only a binary calls
/// this: it changes the whole process.
pub fn raise_file_limit() -> (Option<u64>, Option<u64>) {
    let l = getrlimit(Resource::Nofile);
    if l.current != l.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: l.maximum,
                maximum: l.maximum,
            },
        );
    }
    (l.current, file_limit())
}

/// The cap to serve with: `configured` if the soft `limit` holds it with the reserve, else an
/// error saying what to change; without one, the limit less the reserve, at most
/// [`DERIVED_MAX`] and at least [`MIN`].
pub fn connection_cap(
    configured: Option<usize>,
    limit: Option<u64>,
) -> Result<usize, CapacityError> {
    let fits = limit.map_or(usize::MAX, |l| {
        usize::try_from(l.saturating_sub(RESERVED)).unwrap_or(usize::MAX)
    });
    match configured {
        Some(n) if n > fits => Err(CapacityError::OverFileLimit {
            configured: n,
            limit: limit.unwrap_or_default(),
            fits,
        }),
        Some(n) => Ok(n),
        None => Ok(fits.clamp(MIN, DERIVED_MAX)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_follows_the_file_limit() {
        // The common default soft limit gives the former fixed cap.
        assert_eq!(connection_cap(None, Some(1024)), Ok(768));
        assert_eq!(
            connection_cap(None, Some(20_000)),
            Ok(19_744.min(DERIVED_MAX))
        );
        assert_eq!(connection_cap(None, Some(4096)), Ok(3840));
        assert_eq!(connection_cap(None, None), Ok(DERIVED_MAX));
        // A tiny limit still serves a few (the reserve is an estimate, not a law).
        assert_eq!(connection_cap(None, Some(100)), Ok(MIN));
        // Configured: kept when it fits, whatever the derived value.
        assert_eq!(connection_cap(Some(32), Some(1024)), Ok(32));
        assert_eq!(connection_cap(Some(50_000), None), Ok(50_000));
        assert_eq!(connection_cap(Some(768), Some(1024)), Ok(768));
    }

    #[test]
    fn a_configured_cap_over_the_file_limit_is_refused_with_what_to_change() {
        let e = connection_cap(Some(2000), Some(1024)).unwrap_err();
        assert_eq!(
            e,
            CapacityError::OverFileLimit {
                configured: 2000,
                limit: 1024,
                fits: 768
            }
        );
        let said = e.to_string();
        assert!(
            said.contains("LimitNOFILE=") && said.contains("at most 768"),
            "{said}"
        );
    }
}
