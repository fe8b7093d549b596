//! Framing: wrapping a shared, pre-serialized `d` into `{"op":0,"s":SEQ,"t":"T","d":…}` for
//! one session, and the fixed non-dispatch payloads. This is the per-session hot path, so it
//! only copies bytes.

/// Appends a u64 in decimal.
pub(crate) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends one dispatch payload.
pub(crate) fn dispatch(out: &mut Vec<u8>, seq: u64, event: &str, data: &[u8]) {
    out.reserve(data.len() + event.len() + 40);
    out.extend_from_slice(b"{\"op\":0,\"s\":");
    push_u64(out, seq);
    out.extend_from_slice(b",\"t\":\"");
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(b"\",\"d\":");
    out.extend_from_slice(data);
    out.push(b'}');
}

/// op 10 HELLO.
pub(crate) fn hello(heartbeat_interval_ms: u64) -> String {
    format!(
        "{{\"op\":10,\"s\":null,\"t\":null,\"d\":{{\"heartbeat_interval\":{heartbeat_interval_ms},\"_trace\":[\"[\\\"guildscope-sim\\\",{{}}]\"]}}}}"
    )
}

/// op 11 HEARTBEAT_ACK.
pub(crate) const HEARTBEAT_ACK: &str = r#"{"op":11,"s":null,"t":null,"d":null}"#;
/// op 7 RECONNECT.
pub(crate) const RECONNECT: &str = r#"{"op":7,"s":null,"t":null,"d":null}"#;

/// op 9 INVALID_SESSION.
pub(crate) fn invalid_session(resumable: bool) -> &'static str {
    if resumable {
        r#"{"op":9,"s":null,"t":null,"d":true}"#
    } else {
        r#"{"op":9,"s":null,"t":null,"d":false}"#
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn frames_are_json() {
        let mut out = Vec::new();
        super::dispatch(&mut out, 1_234_567, "MESSAGE_CREATE", br#"{"id":"1"}"#);
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap_or_default();
        assert_eq!(value["s"], 1_234_567);
        assert_eq!(value["t"], "MESSAGE_CREATE");
        assert_eq!(value["d"]["id"], "1");
        let hello: serde_json::Value =
            serde_json::from_str(&super::hello(41_250)).unwrap_or_default();
        assert_eq!(hello["d"]["heartbeat_interval"], 41_250);
    }
}
