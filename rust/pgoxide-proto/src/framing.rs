//! Message framing: splits the received byte stream into `(tag, body)` messages.
//!
//! A message's size is checked from its header, before any of its body is buffered, so a
//! hostile or broken server cannot make us allocate more than `max_message_size`.

use crate::error::{Error, Result};

/// Default upper bound on one backend message: 1 GiB, PostgreSQL's own field-size limit.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 1 << 30;

/// Accumulates received bytes and yields complete messages.
#[derive(Debug)]
pub struct ReadBuffer {
    buf: Vec<u8>,
    /// Start of the first unconsumed byte in `buf`.
    pos: usize,
    max_message_size: usize,
}

/// Location of one complete message inside the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub tag: u8,
    pub start: usize,
    pub end: usize,
}

impl ReadBuffer {
    pub fn new(max_message_size: usize) -> Self {
        Self {
            buf: Vec::with_capacity(64 * 1024),
            pos: 0,
            max_message_size,
        }
    }

    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// Appends received bytes. Consumed bytes are dropped first so the buffer only ever holds
    /// at most one partial message plus the new data.
    pub fn feed(&mut self, data: &[u8]) {
        if self.pos > 0 {
            if self.pos == self.buf.len() {
                self.buf.clear();
            } else {
                self.buf.drain(..self.pos);
            }
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Number of buffered bytes not yet returned as messages.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Returns the next complete message, `Ok(None)` when more data is needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>> {
        let avail = &self.buf[self.pos..];
        if avail.len() < 5 {
            return Ok(None);
        }
        let tag = avail[0];
        let len = u32::from_be_bytes([avail[1], avail[2], avail[3], avail[4]]) as usize;
        if len < 4 {
            return Err(Error::protocol(format!(
                "server message {:?} has an invalid length {len}",
                char::from(tag)
            )));
        }
        let body_len = len - 4;
        if body_len > self.max_message_size {
            return Err(Error::MessageTooLarge {
                tag,
                size: body_len,
                limit: self.max_message_size,
            });
        }
        if avail.len() < 1 + len {
            // Reserve now so a large message is received without repeated reallocation.
            self.buf.reserve(1 + len - avail.len());
            return Ok(None);
        }
        let start = self.pos + 5;
        let end = start + body_len;
        self.pos = end;
        Ok(Some(Frame { tag, start, end }))
    }

    /// The body bytes of a frame returned by [`Self::next_frame`].
    pub fn body(&self, frame: Frame) -> &[u8] {
        &self.buf[frame.start..frame.end]
    }

    /// Releases memory kept after a large message once the buffer is drained.
    pub fn shrink_if_idle(&mut self) {
        const KEEP: usize = 256 * 1024;
        if self.pos == self.buf.len() && self.buf.capacity() > KEEP {
            self.buf = Vec::with_capacity(KEEP);
            self.pos = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::msg;

    #[test]
    fn frames_split_across_feeds() {
        let mut rb = ReadBuffer::new(1024);
        let mut stream = msg(b'Z', b"I");
        stream.extend(msg(b'C', b"SELECT 1\0"));
        for chunk in stream.chunks(3) {
            rb.feed(chunk);
        }
        let f = rb.next_frame().unwrap().unwrap();
        assert_eq!((f.tag, rb.body(f)), (b'Z', &b"I"[..]));
        let f = rb.next_frame().unwrap().unwrap();
        assert_eq!((f.tag, rb.body(f)), (b'C', &b"SELECT 1\0"[..]));
        assert!(rb.next_frame().unwrap().is_none());
        assert_eq!(rb.pending(), 0);
    }

    #[test]
    fn partial_message_waits() {
        let mut rb = ReadBuffer::new(1024);
        let m = msg(b'D', b"abcdef");
        rb.feed(&m[..7]);
        assert!(rb.next_frame().unwrap().is_none());
        rb.feed(&m[7..]);
        assert!(rb.next_frame().unwrap().is_some());
    }

    #[test]
    fn oversized_rejected_from_header_alone() {
        let mut rb = ReadBuffer::new(100);
        rb.feed(&[b'D', 0, 0, 0x10, 0]); // 4096-byte message, only its header received
        match rb.next_frame() {
            Err(Error::MessageTooLarge {
                tag: b'D',
                size: 4092,
                limit: 100,
            }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn length_below_four_is_a_violation() {
        let mut rb = ReadBuffer::new(100);
        rb.feed(&[b'Z', 0, 0, 0, 3]);
        assert!(matches!(rb.next_frame(), Err(Error::Protocol(_))));
    }
}
