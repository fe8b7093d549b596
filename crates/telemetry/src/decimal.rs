//! Unsigned integers as decimal ASCII digits, without `fmt`: span attributes carry
//! snowflakes as text, and StatsD lines are numbers in text, both on the hot path.

/// The two digits of every number below 100, one after the other.
const DIGIT_PAIRS: [u8; 200] = {
    let mut pairs = [0; 200];
    let mut n = 0;
    while n < 100 {
        pairs[2 * n] = b'0' + (n / 10) as u8;
        pairs[2 * n + 1] = b'0' + (n % 10) as u8;
        n += 1;
    }
    pairs
};

/// `value` in decimal ASCII digits, written at the end of `digits` (a snowflake has
/// 19). Eight digits at a time are split off with one 64-bit division and written
/// from 32-bit halves, two digits per table lookup: a 64-bit division by 100 per
/// pair cost twice as much.
pub(crate) fn decimal(value: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut at = digits.len();
    let mut rest = value;
    while rest >= 100_000_000 {
        let low = (rest % 100_000_000) as u32;
        rest /= 100_000_000;
        at -= 8;
        eight(low, &mut digits[at..at + 8]);
    }
    // Below 10^8: fits 32 bits.
    let mut rest = rest as u32;
    while rest >= 100 {
        at -= 2;
        digits[at..at + 2].copy_from_slice(pair(rest % 100));
        rest /= 100;
    }
    if rest >= 10 {
        at -= 2;
        digits[at..at + 2].copy_from_slice(pair(rest));
    } else {
        at -= 1;
        digits[at] = b'0' + rest as u8;
    }
    &digits[at..]
}

/// The two digits of `n`, below 100.
fn pair(n: u32) -> &'static [u8] {
    let at = n as usize * 2;
    &DIGIT_PAIRS[at..at + 2]
}

/// `value`, below 10^8, as exactly eight digits, leading zeros included.
fn eight(value: u32, out: &mut [u8]) {
    let (high, low) = (value / 10_000, value % 10_000);
    out[0..2].copy_from_slice(pair(high / 100));
    out[2..4].copy_from_slice(pair(high % 100));
    out[4..6].copy_from_slice(pair(low / 100));
    out[6..8].copy_from_slice(pair(low % 100));
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn decimal_digits_are_those_rust_prints() {
        let mut digits = [0; 20];
        let edges = [0, 7, 10, 99, 100, 101, 1_100_000_000_000_000_001, u64::MAX];
        // Around each power of ten, where a number takes a digit more (10^8 and
        // 10^16 being where eight digits are split off).
        let powers = (1..20).flat_map(|p| {
            let power = 10_u64.pow(p);
            [power - 1, power, power + 1, power / 10 * 9 + 7]
        });
        for value in edges
            .into_iter()
            .chain(powers)
            .chain((0..2_000).map(|n| n * 7919))
            .chain((0..2_000).map(|n| 1_000_000_000_000_000_000 + n * 7_919_000_000_013))
        {
            assert_eq!(decimal(value, &mut digits), value.to_string().as_bytes());
        }
    }
}
