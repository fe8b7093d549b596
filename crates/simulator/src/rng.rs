//! Seeded pseudo-random numbers.
//!
//! The simulator must produce the same community and the same event stream for the same
//! seed, on every platform and forever, so it carries its own tiny generator (xoshiro256**
//! seeded through SplitMix64) instead of depending on a crate whose output may change
//! between versions.

/// One step of SplitMix64: a good 64-bit mixing function, also used to derive
/// independent values (message text, tokens) from ids without consuming a stream.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A xoshiro256** generator.
#[derive(Clone, Debug)]
pub(crate) struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// Seeds the four state words from SplitMix64, as the xoshiro authors recommend.
    pub(crate) fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            mix64(x.wrapping_sub(0x9E37_79B9_7F4A_7C15))
        };
        let s = [next(), next(), next(), next()];
        Self { s }
    }

    /// An independent generator for a named sub-stream, so that adding draws in one part of
    /// the generator does not shift every value drawn in another.
    pub(crate) fn derive(seed: u64, stream: u64) -> Self {
        Self::new(mix64(seed ^ mix64(stream)))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A uniform value in `0..n`; `n == 0` yields 0.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        // Lemire's multiply-shift; the tiny bias is irrelevant for simulation.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A uniform index into a collection of `len` items; `len == 0` yields 0.
    pub(crate) fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// A uniform value in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo).saturating_add(1))
    }

    /// A uniform float in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A Zipf-like (s ≈ 1) index in `0..len`: index k is drawn with probability
    /// proportional to `ln((k + 2) / (k + 1))`, roughly `1 / (k + 1)`. It needs no table, so
    /// it stays valid while the collection grows and shrinks.
    pub(crate) fn zipf(&mut self, len: usize) -> usize {
        if len <= 1 {
            return 0;
        }
        let x = ((len as f64 + 1.0).ln() * self.unit()).exp() - 1.0;
        (x as usize).min(len - 1)
    }

    /// An exponentially distributed value with the given mean (Poisson inter-arrival times).
    pub(crate) fn exponential(&mut self, mean: f64) -> f64 {
        -(1.0 - self.unit()).ln() * mean
    }

    /// Picks an index according to integer weights; an all-zero table yields 0.
    pub(crate) fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut roll = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if roll < u64::from(w) {
                return i;
            }
            roll -= u64::from(w);
        }
        0
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            items.get(self.index(items.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn same_seed_same_stream() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(7).next_u64(), Rng::new(8).next_u64());
    }

    #[test]
    fn zipf_is_skewed_and_in_range() {
        let mut rng = Rng::new(1);
        let mut counts = [0u32; 10];
        for _ in 0..10_000 {
            let i = rng.zipf(10);
            counts[i] += 1;
        }
        assert!(counts[0] > counts[9] * 4, "{counts:?}");
    }
}
