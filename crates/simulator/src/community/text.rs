//! Generated message text. Content is a pure function of a key (the message id and its
//! revision), so the simulator never stores what it "wrote" and history served over REST is
//! identical to what the gateway sent.

use super::names::WORDS;
use crate::rng::{Rng, mix64};

/// Appends the generated content for `key` to `out`.
pub(crate) fn write_message(out: &mut String, key: u64) {
    let mut rng = Rng::new(mix64(key));
    let words = 2 + rng.zipf(28);
    for i in 0..words {
        if i > 0 {
            out.push(' ');
        }
        let word = WORDS[rng.zipf(WORDS.len())];
        out.push_str(word);
    }
    match rng.below(6) {
        0 => out.push('?'),
        1 => out.push('!'),
        _ => {}
    }
}

/// The generated content for `key`.
pub(crate) fn message(key: u64) -> String {
    let mut out = String::with_capacity(96);
    write_message(&mut out, key);
    out
}

/// Key of a message's content at a given revision (0 = as created, n = after n edits).
pub(crate) fn content_key(seed: u64, message_id: u64, revision: u32) -> u64 {
    mix64(seed ^ message_id ^ (u64::from(revision) << 56))
}

#[cfg(test)]
mod tests {
    #[test]
    fn content_is_deterministic_and_plain() {
        let a = super::message(42);
        assert_eq!(a, super::message(42));
        assert!(a.bytes().all(|b| b.is_ascii() && b != b'"' && b != b'\\'));
    }
}
