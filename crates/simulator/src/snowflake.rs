//! Discord snowflake ids and the simulated clock.
//!
//! Every id the simulator hands out is a real snowflake whose timestamp part says when the
//! thing was created, because bots (and guildscope's statistics) read creation times and
//! shard routing (`(guild_id >> 22) % shards`) from ids.

/// Milliseconds between the Unix epoch and Discord's epoch (2015-01-01).
pub(crate) const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// Builds a snowflake from a Unix time in milliseconds and the low 22 bits.
pub(crate) fn snowflake(unix_ms: u64, low: u64) -> u64 {
    (unix_ms.saturating_sub(DISCORD_EPOCH_MS) << 22) | (low & 0x3F_FFFF)
}

/// The Unix time in milliseconds encoded in a snowflake.
pub(crate) fn unix_ms(id: u64) -> u64 {
    (id >> 22) + DISCORD_EPOCH_MS
}

/// The wall clock as Unix milliseconds.
pub(crate) fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Hands out strictly increasing snowflakes for "now": 4,096 per millisecond, borrowing
/// from the next millisecond when a burst needs more (as Discord's workers do).
#[derive(Debug, Clone)]
pub(crate) struct IdAllocator {
    last_ms: u64,
    increment: u64,
    worker: u64,
}

impl IdAllocator {
    pub(crate) fn new(worker: u64) -> Self {
        Self {
            last_ms: 0,
            increment: 0,
            worker: worker & 0x3FF,
        }
    }

    /// A fresh id for an object created at `now_ms` (or just after, within a burst).
    pub(crate) fn next(&mut self, now_ms: u64) -> u64 {
        if now_ms > self.last_ms {
            self.last_ms = now_ms;
            self.increment = 0;
        } else {
            self.increment += 1;
            if self.increment >= 4096 {
                self.last_ms += 1;
                self.increment = 0;
            }
        }
        snowflake(self.last_ms, (self.worker << 12) | self.increment)
    }
}

#[cfg(test)]
mod tests {
    use super::{IdAllocator, snowflake, unix_ms};

    #[test]
    fn ids_increase_within_a_burst() {
        let mut ids = IdAllocator::new(1);
        let mut last = 0;
        for _ in 0..10_000 {
            let id = ids.next(1_700_000_000_000);
            assert!(id > last);
            last = id;
        }
        assert_eq!(unix_ms(snowflake(1_700_000_000_123, 5)), 1_700_000_000_123);
    }
}
