//! Fixed-size block reading with one block of look-ahead (so the caller knows which block is the
//! last without a peeking copy), and recycling of the buffers handed to the hash thread (so a
//! long stream does not fault in fresh pages for every block).

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::Arc;

/// Reads `size`-byte blocks; only the last may be shorter (or empty, for an empty stream).
pub struct Blocks<R> {
    inner: R,
    size: usize,
    ahead: Option<Vec<u8>>,
    pool: Pool,
}

impl<R: Read> Blocks<R> {
    /// Blocks of `size` bytes from `inner`.
    pub fn new(inner: R, size: usize) -> Self {
        Self {
            inner,
            size,
            ahead: None,
            pool: Pool::default(),
        }
    }

    fn fill(&mut self) -> io::Result<Vec<u8>> {
        let mut buf = self.pool.take(self.size);
        buf.resize(self.size, 0);
        let mut n = 0;
        while n < self.size {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(n);
        Ok(buf)
    }

    /// The next block, and whether it is the last.
    pub fn next_block(&mut self) -> io::Result<(Vec<u8>, bool)> {
        let cur = match self.ahead.take() {
            Some(b) => b,
            None => self.fill()?,
        };
        if cur.len() < self.size {
            return Ok((cur, true));
        }
        let next = self.fill()?;
        if next.is_empty() {
            self.pool.give(next);
            return Ok((cur, true));
        }
        self.ahead = Some(next);
        Ok((cur, false))
    }

    /// The buffer pool, to hand blocks back once their last user is done.
    pub fn pool(&mut self) -> &mut Pool {
        &mut self.pool
    }
}

/// Buffers shared with the hash thread come back here once it has dropped them.
#[derive(Default)]
pub struct Pool {
    spare: Vec<Vec<u8>>,
    shared: VecDeque<Arc<Vec<u8>>>,
}

impl Pool {
    /// A buffer with at least `cap` capacity: a recycled one when possible. Its length and
    /// contents are left as they were, so that resizing it back costs no `memset`.
    pub fn take(&mut self, cap: usize) -> Vec<u8> {
        self.reclaim();
        match self.spare.pop() {
            Some(mut b) => {
                b.reserve(cap.saturating_sub(b.len()));
                b
            }
            None => Vec::with_capacity(cap),
        }
    }

    /// Returns a buffer for reuse.
    pub fn give(&mut self, b: Vec<u8>) {
        if self.spare.len() < 4 {
            self.spare.push(b);
        }
    }

    /// Remembers a buffer shared with another thread, to reuse once that thread is done.
    pub fn lend(&mut self, b: &Arc<Vec<u8>>) {
        self.shared.push_back(Arc::clone(b));
    }

    fn reclaim(&mut self) {
        while let Some(front) = self.shared.front() {
            if Arc::strong_count(front) > 1 {
                break;
            }
            let b = self.shared.pop_front().expect("front exists");
            if let Ok(v) = Arc::try_unwrap(b) {
                self.give(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_the_last_block_exactly() {
        for (len, size, want) in [
            (0, 4, vec![(0, true)]),
            (4, 4, vec![(4, true)]),
            (5, 4, vec![(4, false), (1, true)]),
            (8, 4, vec![(4, false), (4, true)]),
        ] {
            let data = vec![1u8; len];
            let mut b = Blocks::new(&data[..], size);
            let mut got = Vec::new();
            loop {
                let (blk, last) = b.next_block().unwrap();
                got.push((blk.len(), last));
                if last {
                    break;
                }
            }
            assert_eq!(got, want, "len {len}");
        }
    }
}
