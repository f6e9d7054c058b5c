//! Per-principal caps on what holds a connection open for long: event feeds and inbox
//! long-polls. One principal's client looping on feeds could otherwise hold every connection
//! the service has; a station's watcher needs two (its feed and its long-poll).

use super::Failure;
use route_wire::{ErrorCode, PrincipalId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Open streams per principal.
#[derive(Debug, Default)]
pub struct Streams {
    max: usize,
    open: Mutex<HashMap<PrincipalId, usize>>,
}

/// One open stream; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    streams: Arc<Streams>,
    who: PrincipalId,
}

impl Streams {
    /// At most `max` streams per principal.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            open: Mutex::default(),
        })
    }

    /// A slot for `who`, or 429 when it holds `max` already.
    pub fn open(self: &Arc<Self>, who: &PrincipalId, what: &str) -> Result<Slot, Failure> {
        let mut open = self.open.lock().expect("not poisoned");
        let n = open.entry(who.clone()).or_default();
        if *n >= self.max {
            metrics::counter!(crate::metrics::STREAMS_REFUSED).increment(1);
            return Err(Failure::new(
                ErrorCode::TooManyRequests,
                format!(
                    "{who} holds {} event feeds and long-polls open already (the most one principal may); close one before opening {what}",
                    self.max
                ),
            ));
        }
        *n += 1;
        Ok(Slot {
            streams: self.clone(),
            who: who.clone(),
        })
    }

    fn close(&self, who: &PrincipalId) {
        let mut open = self.open.lock().expect("not poisoned");
        if let Some(n) = open.get_mut(who) {
            *n -= 1;
            if *n == 0 {
                open.remove(who);
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.streams.close(&self.who);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_principal_holds_at_most_max_and_a_closed_one_frees_its_slot() {
        let s = Streams::new(2);
        let a: PrincipalId = "st-1".parse().unwrap();
        let b: PrincipalId = "st-2".parse().unwrap();
        let one = s.open(&a, "x").unwrap();
        let _two = s.open(&a, "x").unwrap();
        assert!(s.open(&a, "x").is_err());
        let _other = s.open(&b, "x").unwrap();
        drop(one);
        let _three = s.open(&a, "x").unwrap();
    }
}
