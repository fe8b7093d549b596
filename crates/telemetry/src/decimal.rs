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

/// `value` in decimal ASCII digits, written at the end of `digits` two at a time
/// (a snowflake has 19).
pub(crate) fn decimal(mut value: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut at = digits.len();
    while value >= 100 {
        let pair = (value % 100) as usize * 2;
        value /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if value >= 10 {
        let pair = value as usize * 2;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        digits[at] = b'0' + value as u8;
    }
    &digits[at..]
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn decimal_digits_are_those_rust_prints() {
        let mut digits = [0; 20];
        for value in [0, 7, 10, 99, 100, 101, 1_100_000_000_000_000_001, u64::MAX]
            .into_iter()
            .chain((0..2_000).map(|n| n * 7919))
        {
            assert_eq!(decimal(value, &mut digits), value.to_string().as_bytes());
        }
    }
}
