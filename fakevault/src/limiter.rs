//! Fixed-window request counters (see [`crate::Limits`]).

/// One limit: at most `limit` hits in each consecutive `slot_ms` slot since the start.
struct Window {
    limit: u32,
    slot_ms: u64,
    slot: u64,
    count: u32,
}

/// Several windows that must all admit a hit.
pub(crate) struct Limiter {
    windows: Vec<Window>,
}

impl Limiter {
    /// `(limit, slot_ms)` pairs; a 0 in either disables that window.
    pub fn new(limits: &[(u32, u64)]) -> Limiter {
        let windows = limits
            .iter()
            .filter(|(limit, slot_ms)| *limit > 0 && *slot_ms > 0)
            .map(|&(limit, slot_ms)| Window {
                limit,
                slot_ms,
                slot: 0,
                count: 0,
            })
            .collect();
        Limiter { windows }
    }

    /// Counts a hit at `now_ms` (since the start) if every window admits it; otherwise
    /// counts nothing and returns the milliseconds until the latest full slot ends.
    pub fn hit(&mut self, now_ms: u64) -> Result<(), u64> {
        let mut wait = 0;
        for w in &mut self.windows {
            let slot = now_ms / w.slot_ms;
            if slot != w.slot {
                w.slot = slot;
                w.count = 0;
            }
            if w.count >= w.limit {
                wait = wait.max((slot + 1) * w.slot_ms - now_ms);
            }
        }
        if wait > 0 {
            return Err(wait);
        }
        for w in &mut self.windows {
            w.count += 1;
        }
        Ok(())
    }
}

/// `Retry-After` in whole seconds: rounded up, at least 1.
pub(crate) fn retry_after_s(wait_ms: u64) -> u64 {
    wait_ms.div_ceil(1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_windows() {
        let mut l = Limiter::new(&[(2, 100), (3, 1000)]);
        assert_eq!(l.hit(0), Ok(()));
        assert_eq!(l.hit(10), Ok(()));
        assert_eq!(l.hit(20), Err(80));
        assert_eq!(l.hit(100), Ok(()));
        // The long window is full until 1000.
        assert_eq!(l.hit(150), Err(850));
        assert_eq!(l.hit(1000), Ok(()));
        assert_eq!(retry_after_s(850), 1);
        assert_eq!(retry_after_s(1001), 2);
        assert_eq!(retry_after_s(0), 1);
    }

    #[test]
    fn zero_is_unlimited() {
        let mut l = Limiter::new(&[(0, 100), (5, 0)]);
        for t in 0..100 {
            assert_eq!(l.hit(t), Ok(()));
        }
    }
}
