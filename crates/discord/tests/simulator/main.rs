//! guildscope-discord against the local Discord simulator, over real sockets.
//!
//! Every test starts its own simulator on `127.0.0.1:0`, points a real
//! gateway and REST client at it, and waits on conditions (counters, ground
//! truth) with a bounded timeout; none passes by sleeping long enough.

// A test states its expectations by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod capture;
mod gateway;
mod harness;
mod lanes;
mod prefix;
mod rest;
mod shards;
mod spans;
