//! A log destination a test can read back: hand [`LogBuffer`] to a `tracing`
//! subscriber as its writer, then read the lines it wrote.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;
use tracing_subscriber::fmt::MakeWriter;

/// Everything written to it, shared by its clones.
#[derive(Debug, Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    /// What was written, as text. Panics if it is not UTF-8.
    pub fn text(&self) -> String {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(error) => panic!("the log is not UTF-8: {error}"),
        }
    }

    /// Each line parsed as JSON. Panics on a line that is not.
    pub fn json_lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|line| match serde_json::from_str(line) {
                Ok(value) => value,
                Err(error) => panic!("log line {line:?} is not JSON: {error}"),
            })
            .collect()
    }

    /// The JSON lines whose `message` is `message`.
    pub fn lines_with_message(&self, message: &str) -> Vec<Value> {
        self.json_lines()
            .into_iter()
            .filter(|line| line["message"].as_str() == Some(message))
            .collect()
    }
}

impl io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
