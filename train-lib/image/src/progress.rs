//! Progress of transfers: the traits the image operations report to, and a silent reporter.
//! The binaries draw bars with them (`pht-term`); a service can count bytes or log.

/// Progress of one transfer. Implemented by the binaries' progress bars.
pub trait Progress: Send + Sync {
    /// `n` more bytes done.
    fn advance(&self, n: u64);
    /// The transfer is over.
    fn finish(&self) {}
    /// A handle to the same transfer, for a stream that must own one.
    fn clone_box(&self) -> Box<dyn Progress>;
}

/// Creates a [`Progress`] for each transfer.
pub trait Reporter: Send + Sync {
    /// A new transfer of `total` bytes, described by `what`.
    fn task(&self, what: &str, total: u64) -> Box<dyn Progress>;
}

/// No progress output.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn advance(&self, _: u64) {}
    fn clone_box(&self) -> Box<dyn Progress> {
        Box::new(Silent)
    }
}

impl Reporter for Silent {
    fn task(&self, _: &str, _: u64) -> Box<dyn Progress> {
        Box::new(Silent)
    }
}
