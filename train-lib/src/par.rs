//! A small parallel map over files: the many-small-files case is bound by per-file system
//! calls, and only more cores help there. Results come back in input order; when several items
//! fail, the error of the first failing item (in input order) is returned, so errors do not
//! depend on scheduling.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Runs `f` over `items` on up to `available_parallelism` threads.
pub fn try_map<T: Sync, R: Send, E: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len())
        .min(8);
    if threads <= 1 {
        return items.iter().map(&f).collect();
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let slots: Vec<Mutex<Option<Result<R, E>>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                if failed.load(Ordering::Relaxed) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { return };
                let r = f(item);
                if r.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                *slots[i].lock().expect("slot") = Some(r);
            });
        }
    });
    let mut out = Vec::with_capacity(items.len());
    for slot in slots {
        match slot.into_inner().expect("slot") {
            Some(Ok(r)) => out.push(r),
            Some(Err(e)) => return Err(e),
            // Skipped after an earlier failure; that failure is returned below.
            None => continue,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_reports_the_first_failure() {
        let v: Vec<u32> = (0..100).collect();
        assert_eq!(
            try_map(&v, |x| Ok::<_, ()>(x * 2)).unwrap(),
            (0..100).map(|x| x * 2).collect::<Vec<_>>()
        );
        let r = try_map(&v, |x| {
            if *x == 40 || *x == 90 {
                Err(*x)
            } else {
                Ok(*x)
            }
        });
        assert_eq!(r.unwrap_err(), 40);
    }
}
