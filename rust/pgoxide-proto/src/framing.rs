//! Message framing: splits the received byte stream into `(tag, body)` messages.
//!
//! A message's size is checked from its header, before any of its body is buffered, so a
//! hostile or broken server cannot make us allocate more than `max_message_size`.

use crate::error::{Error, Result};

/// Default upper bound on one backend message: 1 GiB, PostgreSQL's own field-size limit.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 1 << 30;

/// The most room made for a message before its bytes arrive; past it the buffer grows as
/// they do (doubling).
const RESERVE_AHEAD: usize = 16 << 20;

/// Accumulates received bytes and yields complete messages.
///
/// Bytes come in two ways. [`ReadBuffer::feed`] copies them into the buffer. Between
/// [`ReadBuffer::feed_borrowed`] and [`ReadBuffer::end_borrowed`], messages that lie wholly
/// inside the caller's chunk are read where they are, and only a message cut by the chunk's
/// end is copied: a large result then costs no copy of the stream.
#[derive(Debug)]
pub struct ReadBuffer {
    buf: Vec<u8>,
    /// Start of the first unconsumed byte in `buf`.
    pos: usize,
    /// The borrowed chunk (empty when none) and how much of it has been consumed.
    chunk: *const u8,
    chunk_len: usize,
    chunk_pos: usize,
    max_message_size: usize,
}

// SAFETY: the chunk pointer is only set between `feed_borrowed` and `end_borrowed`, whose
// caller keeps the chunk valid meanwhile; the buffer is otherwise an owned `Vec`.
unsafe impl Send for ReadBuffer {}
unsafe impl Sync for ReadBuffer {}

/// Location of one complete message: in the buffer, or in the borrowed chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub tag: u8,
    pub start: usize,
    pub end: usize,
    in_chunk: bool,
}

/// A message's header: its tag and body length, checked against the limit.
fn header(bytes: &[u8], max_message_size: usize) -> Result<(u8, usize)> {
    let tag = bytes[0];
    let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
    if len < 4 {
        return Err(Error::protocol(format!(
            "server message {:?} has an invalid length {len}",
            char::from(tag)
        )));
    }
    let body_len = len - 4;
    if body_len > max_message_size {
        return Err(Error::MessageTooLarge {
            tag,
            size: body_len,
            limit: max_message_size,
        });
    }
    Ok((tag, body_len))
}

impl ReadBuffer {
    pub fn new(max_message_size: usize) -> Self {
        Self {
            buf: Vec::with_capacity(64 * 1024),
            pos: 0,
            chunk: std::ptr::null(),
            chunk_len: 0,
            chunk_pos: 0,
            max_message_size,
        }
    }

    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// Appends received bytes. Consumed bytes are dropped first so the buffer only ever holds
    /// at most one partial message plus the new data.
    pub fn feed(&mut self, data: &[u8]) {
        debug_assert!(self.chunk.is_null(), "feed while a chunk is borrowed");
        self.compact();
        self.buf.extend_from_slice(data);
    }

    fn compact(&mut self) {
        if self.pos > 0 {
            if self.pos == self.buf.len() {
                self.buf.clear();
            } else {
                self.buf.drain(..self.pos);
            }
            self.pos = 0;
        }
    }

    /// Reads `data` in place until [`ReadBuffer::end_borrowed`].
    ///
    /// # Safety
    ///
    /// `data` must stay valid and unchanged until `end_borrowed` is called, and no frame
    /// body obtained meanwhile may be used after that call.
    pub unsafe fn feed_borrowed(&mut self, data: &[u8]) {
        debug_assert!(self.chunk.is_null(), "a chunk is borrowed already");
        self.chunk = data.as_ptr();
        self.chunk_len = data.len();
        self.chunk_pos = 0;
    }

    /// Stops reading the borrowed chunk, copying what is left of it (normally nothing: the
    /// last message it cuts was copied when it was reached).
    pub fn end_borrowed(&mut self) {
        if self.chunk.is_null() {
            return;
        }
        let rest = self.chunk_rest().to_vec();
        self.chunk = std::ptr::null();
        self.chunk_len = 0;
        self.chunk_pos = 0;
        self.feed(&rest);
    }

    /// The unconsumed part of the borrowed chunk (empty without one).
    fn chunk_rest(&self) -> &[u8] {
        if self.chunk.is_null() {
            return &[];
        }
        // SAFETY: between `feed_borrowed` and `end_borrowed` the chunk is valid (the caller's
        // promise), and `chunk_pos <= chunk_len`.
        unsafe {
            std::slice::from_raw_parts(
                self.chunk.add(self.chunk_pos),
                self.chunk_len - self.chunk_pos,
            )
        }
    }

    /// Moves up to `n` bytes from the borrowed chunk to the buffer.
    fn take_from_chunk(&mut self, n: usize) {
        let n = n.min(self.chunk_len - self.chunk_pos);
        if n > 0 {
            // SAFETY: as in `chunk_rest`; the range is within the chunk.
            let bytes = unsafe { std::slice::from_raw_parts(self.chunk.add(self.chunk_pos), n) };
            self.buf.extend_from_slice(bytes);
            self.chunk_pos += n;
        }
    }

    /// Number of received bytes not yet returned as messages.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.pos + (self.chunk_len - self.chunk_pos)
    }

    /// Returns the next complete message, `Ok(None)` when more data is needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>> {
        if self.pos < self.buf.len() || self.chunk.is_null() {
            return self.next_buffered_frame();
        }
        let rest = self.chunk_rest();
        if rest.len() >= 5 {
            let (tag, body_len) = header(rest, self.max_message_size)?;
            if rest.len() >= 5 + body_len {
                let start = self.chunk_pos + 5;
                let end = start + body_len;
                self.chunk_pos = end;
                return Ok(Some(Frame {
                    tag,
                    start,
                    end,
                    in_chunk: true,
                }));
            }
        }
        // The chunk ends inside this message: keep its start in the buffer.
        self.compact();
        self.take_from_chunk(usize::MAX);
        self.next_buffered_frame()
    }

    /// The next message from the buffer, completed from the borrowed chunk if there is one.
    fn next_buffered_frame(&mut self) -> Result<Option<Frame>> {
        if self.buf.len() - self.pos < 5 {
            self.take_from_chunk(5 - (self.buf.len() - self.pos));
        }
        let avail = &self.buf[self.pos..];
        if avail.len() < 5 {
            return Ok(None);
        }
        let (tag, body_len) = header(avail, self.max_message_size)?;
        let missing = (5 + body_len).saturating_sub(avail.len());
        if missing > 0 {
            // Reserve ahead so a large message is received with few reallocations, but only
            // so much: a length announced and then not sent costs nothing beyond it.
            self.buf.reserve(missing.min(RESERVE_AHEAD));
            self.take_from_chunk(missing);
            if self.buf.len() - self.pos < 5 + body_len {
                return Ok(None);
            }
        }
        let start = self.pos + 5;
        let end = start + body_len;
        self.pos = end;
        Ok(Some(Frame {
            tag,
            start,
            end,
            in_chunk: false,
        }))
    }

    /// The body bytes of a frame returned by [`Self::next_frame`].
    pub fn body(&self, frame: Frame) -> &[u8] {
        if frame.in_chunk {
            assert!(
                !self.chunk.is_null() && frame.end <= self.chunk_len,
                "a frame of a chunk that is no longer borrowed"
            );
            // SAFETY: the chunk is borrowed, so valid (the promise of `feed_borrowed`), and
            // the frame's range lies within it.
            unsafe {
                std::slice::from_raw_parts(self.chunk.add(frame.start), frame.end - frame.start)
            }
        } else {
            &self.buf[frame.start..frame.end]
        }
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
    fn an_announced_length_alone_allocates_little() {
        let mut rb = ReadBuffer::new(DEFAULT_MAX_MESSAGE_SIZE);
        rb.feed(&[b'D', 0x3f, 0xff, 0xff, 0xff]); // 1 GiB announced, nothing of it sent
        assert!(rb.next_frame().unwrap().is_none());
        assert!(rb.buf.capacity() <= RESERVE_AHEAD + 64 * 1024);
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

    /// Every message of `stream`, fed as borrowed chunks of `size` bytes, each body read
    /// while its chunk is borrowed; also how many came straight from a chunk.
    fn borrowed_frames(stream: &[u8], size: usize) -> (Vec<(u8, Vec<u8>)>, usize) {
        let mut rb = ReadBuffer::new(1024);
        let (mut frames, mut in_place) = (Vec::new(), 0);
        for chunk in stream.chunks(size) {
            // SAFETY: `chunk` outlives `end_borrowed` below, and bodies are copied before it.
            unsafe { rb.feed_borrowed(chunk) };
            while let Some(f) = rb.next_frame().unwrap() {
                in_place += usize::from(f.in_chunk);
                frames.push((f.tag, rb.body(f).to_vec()));
            }
            rb.end_borrowed();
        }
        assert_eq!(rb.pending(), 0);
        (frames, in_place)
    }

    #[test]
    fn borrowed_chunks_yield_the_same_messages_in_any_split() {
        let messages = [
            (b'T', vec![1u8; 40]),
            (b'D', Vec::new()),
            (b'D', (0..=255).collect()),
            (b'C', b"SELECT 2\0".to_vec()),
            (b'Z', b"I".to_vec()),
        ];
        let stream: Vec<u8> = messages.iter().flat_map(|(t, b)| msg(*t, b)).collect();
        for size in 1..=stream.len() {
            let (frames, in_place) = borrowed_frames(&stream, size);
            assert_eq!(frames, messages, "chunks of {size}");
            if size == stream.len() {
                assert_eq!(in_place, messages.len(), "one chunk: nothing copied");
            }
        }
    }

    #[test]
    fn unread_rest_of_a_borrowed_chunk_is_kept() {
        let mut stream = msg(b'C', b"A\0");
        stream.extend(msg(b'Z', b"I"));
        stream.extend(&msg(b'D', b"xyz")[..4]);
        let mut rb = ReadBuffer::new(1024);
        // SAFETY: `stream` outlives `end_borrowed`, and the body is compared before it.
        unsafe { rb.feed_borrowed(&stream) };
        let f = rb.next_frame().unwrap().unwrap();
        assert_eq!(rb.body(f), b"A\0");
        rb.end_borrowed();
        drop(stream);
        let f = rb.next_frame().unwrap().unwrap();
        assert_eq!((f.tag, rb.body(f)), (b'Z', &b"I"[..]));
        assert!(rb.next_frame().unwrap().is_none());
        rb.feed(&msg(b'D', b"xyz")[4..]);
        let f = rb.next_frame().unwrap().unwrap();
        assert_eq!((f.tag, rb.body(f)), (b'D', &b"xyz"[..]));
    }

    #[test]
    fn oversized_rejected_from_a_borrowed_header() {
        let mut rb = ReadBuffer::new(100);
        let header = [b'D', 0, 0, 0x10, 0];
        // SAFETY: `header` outlives `end_borrowed`.
        unsafe { rb.feed_borrowed(&header) };
        assert!(matches!(
            rb.next_frame(),
            Err(Error::MessageTooLarge { size: 4092, .. })
        ));
        rb.end_borrowed();
    }

    #[test]
    fn length_below_four_is_a_violation() {
        let mut rb = ReadBuffer::new(100);
        rb.feed(&[b'Z', 0, 0, 0, 3]);
        assert!(matches!(rb.next_frame(), Err(Error::Protocol(_))));
    }
}
