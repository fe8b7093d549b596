//! Transport compression, chosen per connection by the `compress` query parameter:
//! `zlib-stream` (one zlib context, each message ending in the `00 00 ff ff` sync-flush
//! marker) or `zstd-stream` (one zstd stream, each message flushed), as Discord does.

use flate2::{Compress, Compression, FlushCompress};
use zstd::zstd_safe::{self, CCtx, InBuffer, OutBuffer};

/// Which compression a connection asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Plain,
    Zlib,
    Zstd,
}

impl Transport {
    /// Parses the `compress` query value; `None` for an unsupported value.
    pub(crate) fn from_query(value: Option<&str>) -> Option<Self> {
        match value {
            None | Some("") => Some(Self::Plain),
            Some("zlib-stream") => Some(Self::Zlib),
            Some("zstd-stream") => Some(Self::Zstd),
            Some(_) => None,
        }
    }
}

/// Compression failed (a bug or memory exhaustion; the connection is closed).
#[derive(Debug, thiserror::Error)]
#[error("compressing a gateway frame failed: {reason}")]
pub(crate) struct CompressError {
    reason: String,
}

/// A per-connection compressor.
pub(crate) enum Compressor {
    Plain,
    Zlib(Box<Compress>),
    Zstd(CCtx<'static>),
}

impl Compressor {
    pub(crate) fn new(transport: Transport) -> Result<Self, CompressError> {
        Ok(match transport {
            Transport::Plain => Self::Plain,
            // Level 1: the stream format is what clients care about, and the simulator must
            // keep up with a firehose.
            Transport::Zlib => Self::Zlib(Box::new(Compress::new(Compression::fast(), true))),
            Transport::Zstd => {
                let mut ctx = CCtx::create();
                ctx.set_parameter(zstd_safe::CParameter::CompressionLevel(1))
                    .map_err(|code| CompressError {
                        reason: zstd_safe::get_error_name(code).to_owned(),
                    })?;
                Self::Zstd(ctx)
            }
        })
    }

    pub(crate) fn is_plain(&self) -> bool {
        matches!(self, Self::Plain)
    }

    /// Compresses one whole gateway message, appending a flushed block to `out`.
    pub(crate) fn compress(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CompressError> {
        match self {
            Self::Plain => {
                out.extend_from_slice(input);
                Ok(())
            }
            Self::Zlib(z) => {
                let start = z.total_in();
                loop {
                    out.reserve(input.len() / 2 + 64);
                    let consumed = usize::try_from(z.total_in() - start).unwrap_or(usize::MAX);
                    z.compress_vec(
                        input.get(consumed..).unwrap_or_default(),
                        out,
                        FlushCompress::Sync,
                    )
                    .map_err(|e| CompressError {
                        reason: e.to_string(),
                    })?;
                    let consumed = usize::try_from(z.total_in() - start).unwrap_or(usize::MAX);
                    // Done when all input is in and the flush fit in the space we gave it.
                    if consumed >= input.len() && out.len() < out.capacity() {
                        return Ok(());
                    }
                }
            }
            Self::Zstd(ctx) => {
                let mut inb = InBuffer::around(input);
                loop {
                    out.reserve(input.len() / 2 + 64);
                    let pos = out.len();
                    let mut outb = OutBuffer::around_pos(out, pos);
                    let remaining = ctx
                        .compress_stream2(
                            &mut outb,
                            &mut inb,
                            zstd_safe::zstd_sys::ZSTD_EndDirective::ZSTD_e_flush,
                        )
                        .map_err(|code| CompressError {
                            reason: zstd_safe::get_error_name(code).to_owned(),
                        })?;
                    if remaining == 0 && inb.pos() >= input.len() {
                        return Ok(());
                    }
                }
            }
        }
    }
}
