//! A stable-toolchain fuzzer of everything in the core that reads bytes from the server: the
//! framing, the session state machine, every backend message parser, the binary and text value
//! codecs, the COPY formats and the pgoutput decoder.
//!
//! Each target builds its inputs from a seeded PRNG: message sequences shaped like a server's
//! (recorded streams and vectors from `tests/`, plus generated responses to the requests the
//! session is owed), mutated at the message level (lengths, counts, tags, truncation,
//! duplication, reordering) and at the byte level, and sometimes raw random bytes. The
//! properties checked on every case:
//!
//! - no panic: each case runs under `catch_unwind`; a failure names the target and seed (run it
//!   again alone with `PGOXIDE_FUZZ_REPLAY=target:seed`) and prints the input;
//! - no hang: the loops driving the core are bounded by what the input can hold (a frame costs
//!   at least 5 bytes), and a watchdog aborts the process, naming the case, when one case runs
//!   longer than `PGOXIDE_FUZZ_HANG_SECS` (default 20);
//! - bounded memory: a counting allocator measures each case's peak, which must stay within a
//!   budget derived from the input's size and the configured maximum message size; an
//!   announced length over that maximum must come back as `Error::MessageTooLarge`;
//! - every rejection is an `Err` value, and a failed session stays failed.
//!
//! `PGOXIDE_FUZZ_CASES` sets the cases per target (default sized for a debug `cargo test`),
//! `PGOXIDE_FUZZ_SEED` the base seed; `tools/fuzz.sh` runs a long pass in release.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Write as _;
use std::io::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use pgoxide_proto::auth::policy::RequireAuth;
use pgoxide_proto::backend::{self, DataRow, ErrorFields, TransactionStatus};
use pgoxide_proto::codec::{
    self, array, bits, composite, datetime, geometry, hstore, misc, network, numeric, range, text,
};
use pgoxide_proto::copy;
use pgoxide_proto::error::Error;
use pgoxide_proto::framing::ReadBuffer;
use pgoxide_proto::frontend::{PROTOCOL_3_0, PROTOCOL_3_2};
use pgoxide_proto::pgoutput;
use pgoxide_proto::replication::{Lsn, StreamMessage};
use pgoxide_proto::session::{ChannelBindingMode, Event, Request, Session, StartupConfig};
use pgoxide_proto::types::{self, Oid};

// ---------------------------------------------------------------------------------------------
// Counting allocator: per-thread live bytes and peak, and a hard cap per case.

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    /// Live bytes allowed above the case's start before allocations fail (0: no case).
    static HARD_CAP: Cell<isize> = const { Cell::new(0) };
    static BASE: Cell<isize> = const { Cell::new(0) };
    static CASE_SEED: Cell<u64> = const { Cell::new(0) };
    static CASE_TARGET: Cell<usize> = const { Cell::new(0) };
}

/// Counts `delta` bytes; false when the case's hard cap would be passed.
fn track(delta: isize) -> bool {
    LIVE.try_with(|live| {
        let now = live.get().wrapping_add(delta);
        let cap = HARD_CAP.with(Cell::get);
        if cap > 0 && delta > 0 && now - BASE.with(Cell::get) > cap {
            report_cap(delta);
            return false;
        }
        live.set(now);
        PEAK.with(|p| p.set(p.get().max(now)));
        true
    })
    .unwrap_or(true)
}

/// Names the case that asked for too much, without allocating; the allocation then fails and
/// the process aborts.
fn report_cap(delta: isize) {
    let mut line = [0u8; 160];
    let mut w = &mut line[..];
    let target = TARGETS[CASE_TARGET.with(Cell::get)];
    let _ = write!(
        w,
        "\nfuzz: case {target}:{} asked for {delta} more bytes, past the hard cap\n",
        CASE_SEED.with(Cell::get)
    );
    let used = 160 - w.len();
    let _ = std::io::stderr().write_all(&line[..used]);
}

// SAFETY: every call is passed on to the system allocator unchanged; only counting is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !track(layout.size() as isize) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's layout, as given.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !track(layout.size() as isize) {
            return std::ptr::null_mut();
        }
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(-(layout.size() as isize));
        // SAFETY: allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let delta = new_size as isize - layout.size() as isize;
        if !track(delta) {
            return std::ptr::null_mut();
        }
        // SAFETY: allocated by `System` with this layout.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            track(-delta);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// No single case may hold more than this above what it started with.
const HARD_CAP_BYTES: isize = 512 << 20;

// ---------------------------------------------------------------------------------------------
// PRNG (splitmix64) and helpers.

#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `1/n`.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }

    /// Random bytes, a small number of them.
    fn blob(&mut self, max: usize) -> Vec<u8> {
        let n = self.size(max);
        self.bytes(n)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A small size, most often tiny.
    fn size(&mut self, max: usize) -> usize {
        match self.below(4) {
            0 => self.below(4.min(max + 1)),
            1 => self.below(16.min(max + 1)),
            _ => self.below(max + 1),
        }
    }
}

fn mix(a: u64, b: u64) -> u64 {
    Rng::new(a ^ b.wrapping_mul(0xD134_2543_DE82_EF95)).next()
}

/// Integers at the edges: what lengths and counts are made of.
const INTERESTING_32: &[i32] = &[
    0,
    1,
    -1,
    2,
    4,
    5,
    7,
    8,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x10000,
    0x3fff_ffff,
    0x4000_0000,
    0x7fff_fffe,
    i32::MAX,
    i32::MIN,
    -2,
    -32768,
];

/// Byte-level mutations of `data`, `rounds` of them.
fn mutate_bytes(rng: &mut Rng, data: &mut Vec<u8>, rounds: usize, splice: &[&[u8]]) {
    for _ in 0..rounds {
        let len = data.len();
        match rng.below(13) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = rng.byte();
            }
            2 if len > 0 => {
                let i = rng.below(len);
                data[i] = *rng.pick(&[0, 1, 0x7f, 0x80, 0xff, b'\\', b'"', b'{', b',', b'\0']);
            }
            3 => {
                let at = rng.below(len + 1);
                let extra = rng.blob(16);
                data.splice(at..at, extra);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let n = rng.size(len - at).max(1);
                data.drain(at..at + n);
            }
            5 if len > 0 => {
                let at = rng.below(len);
                let n = rng.size(len - at).max(1);
                let copy = data[at..at + n].to_vec();
                let to = rng.below(len + 1);
                data.splice(to..to, copy);
            }
            6 => data.truncate(rng.below(len + 1)),
            7 | 8 if len >= 2 => {
                // An Int16 or Int32 (a count or a length) set to an edge value.
                let wide = rng.one_in(2) && len >= 4;
                let w = if wide { 4 } else { 2 };
                let at = rng.below(len - w + 1);
                let v = *rng.pick(INTERESTING_32);
                if wide {
                    data[at..at + 4].copy_from_slice(&v.to_be_bytes());
                } else {
                    data[at..at + 2].copy_from_slice(&(v as i16).to_be_bytes());
                }
            }
            9 if len >= 4 => {
                // Nudge an Int32 by a little: off-by-one lengths.
                let at = rng.below(len - 3);
                let v = i32::from_be_bytes(data[at..at + 4].try_into().unwrap());
                let d = rng.below(9) as i32 - 4;
                data[at..at + 4].copy_from_slice(&v.wrapping_add(d).to_be_bytes());
            }
            10 if !splice.is_empty() => {
                let other = *rng.pick(splice);
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let b = a + rng.size(other.len() - a);
                    let at = rng.below(len + 1);
                    data.splice(at..at, other[a..b].iter().copied());
                }
            }
            11 if len > 1 => {
                let a = rng.below(len);
                let b = rng.below(len);
                data.swap(a, b);
            }
            _ => {
                let at = rng.below(len + 1);
                let v = *rng.pick(INTERESTING_32);
                data.splice(at..at, v.to_be_bytes());
            }
        }
    }
}

fn hex(data: &[u8]) -> String {
    let shown = &data[..data.len().min(4096)];
    let mut s = String::with_capacity(2 * shown.len());
    for b in shown {
        let _ = write!(s, "{b:02x}");
    }
    if data.len() > shown.len() {
        let _ = write!(s, "... ({} bytes)", data.len());
    }
    s
}

fn unhex(digits: &str) -> Vec<u8> {
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Seeds from the recorded streams and vectors.

struct Corpus {
    /// Backend messages from the recorded server streams.
    messages: Vec<(u8, Vec<u8>)>,
    /// `(codec name, binary value)` from send_pg15.txt.
    binary: Vec<(String, Vec<u8>)>,
    /// `(oid, binary value, text)` from text_pg15.txt.
    text: Vec<(Oid, Vec<u8>, Vec<u8>)>,
    /// XLogData payloads (pgoutput messages) from the logical replication recording.
    pgoutput: Vec<Vec<u8>>,
}

fn corpus() -> &'static Corpus {
    static CORPUS: std::sync::OnceLock<Corpus> = std::sync::OnceLock::new();
    CORPUS.get_or_init(load_corpus)
}

fn load_corpus() -> Corpus {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests");
    let mut messages = Vec::new();
    let mut pgoutput = Vec::new();
    for entry in std::fs::read_dir(format!("{dir}/streams")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let mut stream = Vec::new();
        for line in text.lines().filter(|l| l.starts_with("S ")) {
            stream.extend(unhex(&line[2..]));
        }
        let mut rest = &stream[..];
        while rest.len() >= 5 {
            let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
            let body = rest[5..=len].to_vec();
            if rest[0] == b'd' {
                if let Ok(StreamMessage::XLogData { data, .. }) = StreamMessage::parse(&body) {
                    pgoutput.push(data.to_vec());
                }
            }
            messages.push((rest[0], body));
            rest = &rest[1 + len..];
        }
    }
    let binary = std::fs::read_to_string(format!("{dir}/vectors/send_pg15.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let mut parts = l.splitn(3, '|');
            let codec = parts.next().unwrap().to_owned();
            (codec, unhex(parts.next().unwrap()))
        })
        .collect();
    let text = std::fs::read_to_string(format!("{dir}/vectors/text_pg15.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let mut parts = l.splitn(4, '|');
            let oid = parts.next()?.parse().ok()?;
            let send = unhex(parts.next()?);
            let raw = parts.next()?.as_bytes();
            // The recorder writes '%', '|' and control characters as %XX.
            let mut t = Vec::new();
            let mut i = 0;
            while i < raw.len() {
                if raw[i] == b'%' && i + 2 < raw.len() {
                    t.extend(unhex(std::str::from_utf8(&raw[i + 1..i + 3]).ok()?));
                    i += 3;
                } else {
                    t.push(raw[i]);
                    i += 1;
                }
            }
            Some((oid, send, t))
        })
        .collect();
    Corpus {
        messages,
        binary,
        text,
        pgoutput,
    }
}

// ---------------------------------------------------------------------------------------------
// The runner: cases, watchdog, failure reports.

const TARGETS: &[&str] = &[
    "framing", "session", "backend", "binary", "text", "copy", "pgoutput",
];

/// Per target: the case's start (ms since the watchdog's epoch, 0 when idle) and its seed.
static BUSY_SINCE: [AtomicU64; 7] = [const { AtomicU64::new(0) }; 7];
static BUSY_SEED: [AtomicU64; 7] = [const { AtomicU64::new(0) }; 7];
static EPOCH: Mutex<Option<Instant>> = Mutex::new(None);

fn now_ms() -> u64 {
    let mut epoch = EPOCH.lock().unwrap();
    epoch.get_or_insert_with(Instant::now).elapsed().as_millis() as u64 + 1
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn start_watchdog() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let limit = env_u64("PGOXIDE_FUZZ_HANG_SECS").unwrap_or(20) * 1000;
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(250));
            let now = now_ms();
            for (i, since) in BUSY_SINCE.iter().enumerate() {
                let since = since.load(Ordering::Relaxed);
                if since != 0 && now.saturating_sub(since) > limit {
                    eprintln!(
                        "fuzz: case {}:{} has run for over {} s: a hang \
                         (replay it with PGOXIDE_FUZZ_REPLAY={}:{})",
                        TARGETS[i],
                        BUSY_SEED[i].load(Ordering::Relaxed),
                        limit / 1000,
                        TARGETS[i],
                        BUSY_SEED[i].load(Ordering::Relaxed),
                    );
                    std::process::abort();
                }
            }
        });
    });
}

/// What a case reports back: its main input (printed on failure) and the memory it may use.
struct Case {
    input: Vec<u8>,
    /// Peak bytes the case may hold above its start.
    budget: usize,
}

/// A budget for work on `input_len` bytes: a fixed allowance plus a multiple of the input.
fn budget(input_len: usize) -> usize {
    (1 << 20) + 32 * input_len
}

type CaseFn = fn(&mut Rng, &mut Case);

/// Cases per target when `PGOXIDE_FUZZ_CASES` is not set: with seven targets, over 10^5 in
/// all, in a few seconds per target in a debug build.
const DEFAULT_CASES: u64 = 30_000;

fn run(target: &str, case: CaseFn) {
    let index = TARGETS.iter().position(|t| *t == target).unwrap();
    let corpus_loaded = corpus();
    assert!(
        corpus_loaded.messages.len() > 50 && corpus_loaded.binary.len() > 50,
        "recorded streams or vectors missing"
    );
    start_watchdog();
    let (seeds, label): (Vec<u64>, String) = if let Ok(spec) = std::env::var("PGOXIDE_FUZZ_REPLAY")
    {
        {
            let (t, s) = spec
                .split_once(':')
                .expect("PGOXIDE_FUZZ_REPLAY=target:seed");
            if t != target {
                return;
            }
            (vec![s.parse().expect("a seed")], "replay".into())
        }
    } else {
        {
            let n = env_u64("PGOXIDE_FUZZ_CASES").unwrap_or(DEFAULT_CASES);
            let base = env_u64("PGOXIDE_FUZZ_SEED").unwrap_or(0x5EED);
            let seeds = (0..n)
                .map(|i| mix(mix(base, index as u64 + 1), i))
                .collect();
            (seeds, format!("base seed {base}"))
        }
    };
    let started = Instant::now();
    let mut max_peak = 0usize;
    for &seed in &seeds {
        let mut c = Case {
            input: Vec::new(),
            budget: budget(0),
        };
        BUSY_SEED[index].store(seed, Ordering::Relaxed);
        BUSY_SINCE[index].store(now_ms(), Ordering::Relaxed);
        CASE_SEED.with(|s| s.set(seed));
        CASE_TARGET.with(|t| t.set(index));
        let base = LIVE.with(Cell::get);
        BASE.with(|b| b.set(base));
        PEAK.with(|p| p.set(base));
        HARD_CAP.with(|c| c.set(HARD_CAP_BYTES));
        let mut rng = Rng::new(seed);
        let outcome = catch_unwind(AssertUnwindSafe(|| case(&mut rng, &mut c)));
        HARD_CAP.with(|c| c.set(0));
        BUSY_SINCE[index].store(0, Ordering::Relaxed);
        let peak = (PEAK.with(Cell::get) - base).max(0) as usize;
        let repro = || {
            format!(
                "replay with PGOXIDE_FUZZ_REPLAY={target}:{seed}; input ({} bytes): {}",
                c.input.len(),
                hex(&c.input)
            )
        };
        if let Err(panic) = outcome {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("?");
            panic!("fuzz {target}: case {seed} panicked: {msg}\n{}", repro());
        }
        assert!(
            peak <= c.budget,
            "fuzz {target}: case {seed} held {peak} bytes at its peak, over its budget of {}\n{}",
            c.budget,
            repro()
        );
        max_peak = max_peak.max(peak);
    }
    let elapsed = started.elapsed();
    println!(
        "fuzz {target}: {} cases in {:.2} s ({:.0}/s), {label}, largest peak {} bytes",
        seeds.len(),
        elapsed.as_secs_f64(),
        f64::from(u32::try_from(seeds.len()).unwrap_or(u32::MAX)) / elapsed.as_secs_f64().max(1e-9),
        max_peak
    );
}

// ---------------------------------------------------------------------------------------------
// Backend messages: generators of valid-looking ones.

type Msg = (u8, Vec<u8>);

fn cstr(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(s);
    out.push(0);
}

fn error_fields(rng: &mut Rng, severity: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    for (code, value) in [
        (b'S', severity),
        (b'V', severity),
        (b'C', &b"42P01"[..]),
        (b'M', b"relation \"x\" does not exist"),
    ] {
        b.push(code);
        cstr(&mut b, value);
    }
    for _ in 0..rng.below(3) {
        b.push(*rng.pick(b"DHPpqWstcdnFLR"));
        cstr(&mut b, b"detail");
    }
    b.push(0);
    b
}

fn row_description(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut b = (n as i16).to_be_bytes().to_vec();
    for i in 0..n {
        cstr(&mut b, format!("c{i}").as_bytes());
        b.extend_from_slice(&16384u32.to_be_bytes());
        b.extend_from_slice(&(i as i16 + 1).to_be_bytes());
        let oid = *rng.pick(&[23u32, 25, 20, 1700, 1184, 16, 17, 1007, 3904]);
        b.extend_from_slice(&oid.to_be_bytes());
        b.extend_from_slice(&(-1i16).to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes());
        b.extend_from_slice(&(rng.below(2) as i16).to_be_bytes());
    }
    b
}

/// A field value: a recorded binary value, a short text, or random bytes.
fn value(rng: &mut Rng) -> Vec<u8> {
    let c = corpus();
    match rng.below(3) {
        0 => c.binary[rng.below(c.binary.len())].1.clone(),
        1 => c.text[rng.below(c.text.len())].2.clone(),
        _ => rng.blob(12),
    }
}

fn data_row(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut b = (n as i16).to_be_bytes().to_vec();
    for _ in 0..n {
        if rng.one_in(5) {
            b.extend_from_slice(&(-1i32).to_be_bytes());
        } else {
            let v = value(rng);
            b.extend_from_slice(&(v.len() as i32).to_be_bytes());
            b.extend_from_slice(&v);
        }
    }
    b
}

fn copy_response(rng: &mut Rng) -> Vec<u8> {
    let n = rng.below(4);
    let mut b = vec![rng.below(2) as u8];
    b.extend_from_slice(&(n as i16).to_be_bytes());
    for _ in 0..n {
        b.extend_from_slice(&(rng.below(2) as i16).to_be_bytes());
    }
    b
}

fn auth(code: i32, extra: &[u8]) -> Msg {
    let mut b = code.to_be_bytes().to_vec();
    b.extend_from_slice(extra);
    (b'R', b)
}

/// A ParameterStatus; `refused` allows one the session must refuse (an encoding not UTF-8).
fn parameter_status(rng: &mut Rng, refused: bool) -> Msg {
    if refused && rng.one_in(6) {
        return (b'S', b"client_encoding\0LATIN1\0".to_vec());
    }
    let (name, value): (&[u8], &[u8]) = *rng.pick(&[
        (&b"client_encoding"[..], &b"UTF8"[..]),
        (b"TimeZone", b"Etc/UTC"),
        (b"DateStyle", b"ISO, MDY"),
        (b"server_version", b"15.18"),
        (b"integer_datetimes", b"on"),
        (b"in_hot_standby", b"off"),
    ]);
    let mut b = Vec::new();
    cstr(&mut b, name);
    cstr(&mut b, value);
    (b'S', b)
}

/// A message that may arrive at any time.
fn async_message(rng: &mut Rng, refused: bool) -> Msg {
    match rng.below(3) {
        0 => (b'N', error_fields(rng, b"NOTICE")),
        1 => {
            let mut b = 4242i32.to_be_bytes().to_vec();
            cstr(&mut b, b"chan");
            cstr(&mut b, b"payload");
            (b'A', b)
        }
        _ => parameter_status(rng, refused),
    }
}

/// A pgoutput message: recorded, or built.
fn pgoutput_message(rng: &mut Rng) -> Vec<u8> {
    let c = corpus();
    if !c.pgoutput.is_empty() && rng.one_in(2) {
        return c.pgoutput[rng.below(c.pgoutput.len())].clone();
    }
    let lsn = |b: &mut Vec<u8>| b.extend_from_slice(&0x1_6B37_4D48u64.to_be_bytes());
    let tuple = |rng: &mut Rng, b: &mut Vec<u8>| {
        let n = rng.below(4);
        b.extend_from_slice(&(n as i16).to_be_bytes());
        for _ in 0..n {
            match rng.below(4) {
                0 => b.push(b'n'),
                1 => b.push(b'u'),
                k => {
                    b.push(if k == 2 { b't' } else { b'b' });
                    let v = value(rng);
                    b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    b.extend_from_slice(&v);
                }
            }
        }
    };
    let mut b = Vec::new();
    let tag = *rng.pick(b"BCORYIUDTMSEcApPKrb");
    b.push(tag);
    match tag {
        b'B' => {
            lsn(&mut b);
            b.extend_from_slice(&7i64.to_be_bytes());
            b.extend_from_slice(&740u32.to_be_bytes());
        }
        b'C' => {
            b.push(0);
            lsn(&mut b);
            lsn(&mut b);
            b.extend_from_slice(&7i64.to_be_bytes());
        }
        b'O' => {
            lsn(&mut b);
            cstr(&mut b, b"origin");
        }
        b'R' => {
            b.extend_from_slice(&16384u32.to_be_bytes());
            cstr(&mut b, b"public");
            cstr(&mut b, b"t");
            b.push(b'd');
            let n = rng.below(4);
            b.extend_from_slice(&(n as i16).to_be_bytes());
            for i in 0..n {
                b.push(u8::from(i == 0));
                cstr(&mut b, format!("c{i}").as_bytes());
                b.extend_from_slice(&23u32.to_be_bytes());
                b.extend_from_slice(&(-1i32).to_be_bytes());
            }
        }
        b'Y' => {
            b.extend_from_slice(&16400u32.to_be_bytes());
            cstr(&mut b, b"public");
            cstr(&mut b, b"mood");
        }
        b'I' => {
            b.extend_from_slice(&16384u32.to_be_bytes());
            b.push(b'N');
            tuple(rng, &mut b);
        }
        b'U' => {
            b.extend_from_slice(&16384u32.to_be_bytes());
            if rng.one_in(2) {
                b.push(*rng.pick(b"KO"));
                tuple(rng, &mut b);
            }
            b.push(b'N');
            tuple(rng, &mut b);
        }
        b'D' => {
            b.extend_from_slice(&16384u32.to_be_bytes());
            b.push(*rng.pick(b"KO"));
            tuple(rng, &mut b);
        }
        b'T' => {
            let n = rng.below(3);
            b.extend_from_slice(&(n as i32).to_be_bytes());
            b.push(rng.below(4) as u8);
            for _ in 0..n {
                b.extend_from_slice(&16384u32.to_be_bytes());
            }
        }
        b'M' => {
            b.push(1);
            lsn(&mut b);
            cstr(&mut b, b"prefix");
            b.extend_from_slice(&5i32.to_be_bytes());
            b.extend_from_slice(b"hello");
        }
        b'S' => {
            b.extend_from_slice(&741u32.to_be_bytes());
            b.push(rng.below(2) as u8);
        }
        b'E' => {}
        b'c' => {
            b.extend_from_slice(&741u32.to_be_bytes());
            b.push(0);
            lsn(&mut b);
            lsn(&mut b);
            b.extend_from_slice(&7i64.to_be_bytes());
        }
        b'A' => {
            b.extend_from_slice(&741u32.to_be_bytes());
            b.extend_from_slice(&742u32.to_be_bytes());
            if rng.one_in(2) {
                lsn(&mut b);
                b.extend_from_slice(&7i64.to_be_bytes());
            }
        }
        b'b' | b'P' | b'p' | b'K' => {
            if tag == b'K' || tag == b'r' {
                b.push(0);
            }
            lsn(&mut b);
            lsn(&mut b);
            b.extend_from_slice(&7i64.to_be_bytes());
            if tag == b'r' {
                b.extend_from_slice(&8i64.to_be_bytes());
            }
            b.extend_from_slice(&741u32.to_be_bytes());
            cstr(&mut b, b"gid");
        }
        _ => {
            b.push(0);
            lsn(&mut b);
            lsn(&mut b);
            b.extend_from_slice(&7i64.to_be_bytes());
            b.extend_from_slice(&8i64.to_be_bytes());
            b.extend_from_slice(&741u32.to_be_bytes());
            cstr(&mut b, b"gid");
        }
    }
    b
}

/// A replication CopyData payload: XLogData around a pgoutput message, or a keepalive.
fn replication_payload(rng: &mut Rng) -> Vec<u8> {
    let mut b = Vec::new();
    if rng.one_in(3) {
        b.push(b'k');
        b.extend_from_slice(&0x1_0000u64.to_be_bytes());
        b.extend_from_slice(&7i64.to_be_bytes());
        b.push(rng.below(2) as u8);
    } else {
        b.push(b'w');
        b.extend_from_slice(&0x1_0000u64.to_be_bytes());
        b.extend_from_slice(&0x2_0000u64.to_be_bytes());
        b.extend_from_slice(&7i64.to_be_bytes());
        b.extend(pgoutput_message(rng));
    }
    b
}

/// Binary COPY data: header, tuples, trailer.
fn binary_copy_stream(rng: &mut Rng) -> Vec<u8> {
    let mut b = Vec::new();
    copy::write_header(&mut b);
    let columns = rng.below(4);
    for _ in 0..rng.below(5) {
        b.extend(data_row(rng, columns));
    }
    copy::write_trailer(&mut b);
    b
}

/// Any backend message of a known shape.
fn any_message(rng: &mut Rng) -> Msg {
    let c = corpus();
    match rng.below(22) {
        0 => c.messages[rng.below(c.messages.len())].clone(),
        1 => (b'Z', vec![*rng.pick(b"ITE")]),
        2 => {
            let n = rng.below(4);
            (b'T', row_description(rng, n))
        }
        3 => {
            let n = rng.below(4);
            (b'D', data_row(rng, n))
        }
        4 => (b'C', b"SELECT 3\0".to_vec()),
        5 => (b'E', error_fields(rng, b"ERROR")),
        6 => async_message(rng, true),
        7 => (*rng.pick(b"123nsI"), Vec::new()),
        8 => {
            let n = rng.below(4);
            let mut b = (n as u16).to_be_bytes().to_vec();
            for _ in 0..n {
                b.extend_from_slice(&23u32.to_be_bytes());
            }
            (b't', b)
        }
        9 => (*rng.pick(b"GHW"), copy_response(rng)),
        10 => (b'd', replication_payload(rng)),
        11 => {
            let s = binary_copy_stream(rng);
            let a = rng.below(s.len());
            (b'd', s[a..].to_vec())
        }
        12 => (b'c', Vec::new()),
        13 => {
            let mut b = 1234i32.to_be_bytes().to_vec();
            let n = *rng.pick(&[4, 32, 3, 257]);
            b.extend(rng.bytes(n));
            (b'K', b)
        }
        14 => auth(
            *rng.pick(&[0, 2, 3, 5, 7, 8, 9, 10, 11, 12, 99]),
            &rng.bytes(4),
        ),
        15 => auth(10, b"SCRAM-SHA-256\0\0"),
        16 => auth(10, b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"),
        17 => auth(11, b"r=abc,s=c2FsdA==,i=4096"),
        18 => auth(12, b"v=AAAA"),
        19 => {
            let mut b = 196_608i32.to_be_bytes().to_vec();
            b.extend_from_slice(&(rng.below(2) as i32).to_be_bytes());
            (b'v', b)
        }
        20 => (b'E', error_fields(rng, b"FATAL")),
        _ => (rng.byte(), rng.blob(24)),
    }
}

/// The server's answer to the responses a session owes, valid as the protocol has it.
fn responses(rng: &mut Rng, expects: &[Expect]) -> Vec<Msg> {
    let mut out = Vec::new();
    let mut failed = false;
    for e in expects {
        if rng.one_in(6) {
            out.push(async_message(rng, false));
        }
        // After an error the server ignores every message up to the next Sync, a Query too.
        if failed && *e != Expect::Sync {
            continue;
        }
        match e {
            Expect::Parse => out.push((b'1', Vec::new())),
            Expect::Bind => out.push((b'2', Vec::new())),
            Expect::Close => out.push((b'3', Vec::new())),
            Expect::ParamDesc => {
                let mut b = 1u16.to_be_bytes().to_vec();
                b.extend_from_slice(&23u32.to_be_bytes());
                out.push((b't', b));
            }
            Expect::RowDesc => {
                if rng.one_in(4) {
                    out.push((b'n', Vec::new()));
                } else {
                    let n = rng.below(4);
                    out.push((b'T', row_description(rng, n)));
                }
            }
            Expect::Execute => {
                if rng.one_in(8) {
                    out.push((b'E', error_fields(rng, b"ERROR")));
                    failed = true;
                    continue;
                }
                let n = rng.below(4);
                for _ in 0..rng.below(4) {
                    out.push((b'D', data_row(rng, n)));
                }
                out.push(match rng.below(6) {
                    0 => (b's', Vec::new()),
                    1 => (b'I', Vec::new()),
                    _ => (b'C', b"SELECT 2\0".to_vec()),
                });
            }
            Expect::Simple => {
                simple_query_results(rng, &mut out);
                out.push((b'Z', vec![*rng.pick(b"ITE")]));
            }
            Expect::Sync => {
                failed = false;
                out.push((b'Z', vec![*rng.pick(b"ITE")]));
            }
        }
    }
    out
}

fn simple_query_results(rng: &mut Rng, out: &mut Vec<Msg>) {
    for _ in 0..rng.below(3) {
        match rng.below(8) {
            0 => {
                out.push((b'H', copy_response(rng)));
                let s = binary_copy_stream(rng);
                let cut = rng.below(s.len() + 1);
                out.push((b'd', s[..cut].to_vec()));
                out.push((b'd', s[cut..].to_vec()));
                out.push((b'c', Vec::new()));
                out.push((b'C', b"COPY 3\0".to_vec()));
            }
            1 => {
                out.push((b'G', copy_response(rng)));
                out.push((b'C', b"COPY 0\0".to_vec()));
            }
            2 => {
                out.push((b'W', copy_response(rng)));
                for _ in 0..rng.below(4) {
                    out.push((b'd', replication_payload(rng)));
                }
                out.push((b'c', Vec::new()));
                out.push((b'C', b"START_REPLICATION\0".to_vec()));
            }
            3 => {
                out.push((b'E', error_fields(rng, b"ERROR")));
                return;
            }
            4 => out.push((b'I', Vec::new())),
            _ => {
                let n = rng.below(4);
                out.push((b'T', row_description(rng, n)));
                for _ in 0..rng.below(4) {
                    out.push((b'D', data_row(rng, n)));
                }
                out.push((b'C', b"SELECT 3\0".to_vec()));
            }
        }
    }
}

/// What a generated request makes the server owe, as [`responses`] answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Parse,
    Bind,
    Close,
    ParamDesc,
    RowDesc,
    Execute,
    Simple,
    Sync,
}

/// A random request, and what it makes the server owe.
fn request(rng: &mut Rng) -> (Request, Vec<Expect>) {
    let mut req = Request::new();
    let mut expects = Vec::new();
    for _ in 0..=rng.below(3) {
        match rng.below(4) {
            0 => {
                req.simple_query("SELECT 1").unwrap();
                expects.push(Expect::Simple);
            }
            1 => {
                req.parse("s", "SELECT $1", &[23]).unwrap();
                req.describe_statement("s").unwrap();
                let mut bind = req.bind("", "s", &[1], 1).unwrap();
                bind.begin_value().extend_from_slice(&1i32.to_be_bytes());
                bind.end_value().unwrap();
                bind.finish(&[1]).unwrap();
                req.execute("", 0).unwrap();
                req.sync();
                expects.extend([
                    Expect::Parse,
                    Expect::ParamDesc,
                    Expect::RowDesc,
                    Expect::Bind,
                    Expect::Execute,
                    Expect::Sync,
                ]);
            }
            2 => {
                req.describe_portal("p").unwrap();
                req.execute("p", 2).unwrap();
                if rng.one_in(2) {
                    req.flush();
                    expects.extend([Expect::RowDesc, Expect::Execute]);
                } else {
                    req.sync();
                    expects.extend([Expect::RowDesc, Expect::Execute, Expect::Sync]);
                }
            }
            _ => {
                req.close_statement("s").unwrap();
                req.sync();
                expects.extend([Expect::Close, Expect::Sync]);
            }
        }
    }
    (req, expects)
}

fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// Message-level mutations; true when any was made.
fn mutate_messages(rng: &mut Rng, msgs: &mut Vec<Msg>) -> bool {
    if rng.one_in(4) {
        return false;
    }
    for _ in 0..=rng.size(4) {
        let n = msgs.len();
        match rng.below(9) {
            0 if n > 0 => {
                let i = rng.below(n);
                let rounds = 1 + rng.size(3);
                mutate_bytes(rng, &mut msgs[i].1, rounds, &[]);
            }
            1 if n > 0 => {
                let i = rng.below(n);
                msgs.remove(i);
            }
            2 if n > 0 => {
                let i = rng.below(n);
                let m = msgs[i].clone();
                msgs.insert(rng.below(n + 1), m);
            }
            3 if n > 1 => {
                let i = rng.below(n - 1);
                msgs.swap(i, i + 1);
            }
            4 if n > 0 => {
                let i = rng.below(n);
                msgs[i].0 = *rng.pick(b"RSKZTDCEN A123nstGHWdcvI");
            }
            5 if n > 0 => {
                let i = rng.below(n);
                let keep = rng.below(msgs[i].1.len() + 1);
                msgs[i].1.truncate(keep);
            }
            6 if n > 1 => {
                // Move a message somewhere else: a reply out of order.
                let m = msgs.remove(rng.below(n));
                msgs.insert(rng.below(n), m);
            }
            _ => {
                let m = any_message(rng);
                msgs.insert(rng.below(n + 1), m);
            }
        }
    }
    true
}

/// Serializes messages, sometimes with a header that lies about the length; true when the
/// stream is not what the messages say.
fn serialize(rng: &mut Rng, msgs: &[Msg], lie: bool) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut lied = false;
    for (tag, body) in msgs {
        let start = out.len();
        out.extend(frame(*tag, body));
        if lie && rng.one_in(8) {
            let len = (body.len() + 4) as i64;
            let fake = match rng.below(4) {
                0 => len + rng.below(9) as i64 - 4,
                1 => i64::from(*rng.pick(INTERESTING_32)),
                2 => rng.below(4) as i64,
                _ => len * 2,
            };
            out[start + 1..start + 5].copy_from_slice(&(fake as u32).to_be_bytes());
            lied = true;
        }
    }
    (out, lied)
}

// ---------------------------------------------------------------------------------------------
// Driving the session and the parsers with what it yields.

/// Runs every parser that applies to an event's payload, as the binding would.
fn inspect(
    event: &Event<'_>,
    binary_copy: &mut Option<copy::BinaryReader>,
    decoder: &mut pgoutput::Decoder,
) {
    match *event {
        Event::Notice(f) | Event::Error(f) => {
            let n = f.iter().count();
            let _ = (n, f.get(b'C'), f.get(b'M'));
        }
        Event::ParameterDescription(b) => {
            let _ = backend::parse_parameter_description(b);
        }
        Event::RowDescription(b) => {
            let _ = backend::parse_row_description(b);
        }
        Event::DataRow(b) => walk_data_row(b),
        Event::CopyInResponse(b) | Event::CopyBothResponse(b) => {
            let _ = backend::parse_copy_response(b);
        }
        Event::CopyOutResponse(b)
            if backend::parse_copy_response(b).is_ok_and(|r| r.format == 1) =>
        {
            *binary_copy = Some(copy::BinaryReader::new());
        }
        Event::CopyData(d) => {
            if let Some(reader) = binary_copy {
                let _ = reader.feed::<Error>(d, |t| {
                    walk_data_row(t);
                    Ok(())
                });
            } else if let Ok(StreamMessage::XLogData { data, .. }) = StreamMessage::parse(d) {
                walk_pgoutput(decoder, data);
            }
        }
        Event::CopyDone => {
            if let Some(reader) = binary_copy.take() {
                let _ = reader.finish();
            }
        }
        _ => {}
    }
}

fn walk_data_row(body: &[u8]) {
    if let Ok(mut row) = DataRow::parse(body) {
        for _ in 0..row.len() {
            match row.next_field() {
                Ok(Some(v)) => {
                    let _ = codec::decode_i32(v);
                }
                Ok(None) => {}
                Err(_) => return,
            }
        }
        let _ = row.finish();
    }
}

fn walk_pgoutput(decoder: &mut pgoutput::Decoder, data: &[u8]) {
    use pgoutput::Message as M;
    if let Ok(m) = decoder.decode(data) {
        let tuples = match m {
            M::Insert { new, .. } => vec![new],
            M::Update { old, new, .. } => old.map(|o| o.data()).into_iter().chain([new]).collect(),
            M::Delete { old, .. } => vec![old.data()],
            _ => vec![],
        };
        for t in tuples {
            assert_eq!(t.values().count(), t.len());
        }
    }
}

/// Everything a session needs, with some settings drawn at random.
fn config(rng: &mut Rng, max_message_size: usize) -> StartupConfig {
    let certificate = rng
        .one_in(3)
        .then(|| include_bytes!("certs/rsa-sha256.der").to_vec());
    let max_protocol = *rng.pick(&[PROTOCOL_3_0, PROTOCOL_3_2]);
    StartupConfig {
        user: "u".into(),
        database: "d".into(),
        params: vec![],
        password: (!rng.one_in(4)).then(|| b"pw".to_vec()),
        max_message_size,
        tls: rng.one_in(2),
        server_certificate: certificate,
        channel_binding: *rng.pick(&[
            ChannelBindingMode::Prefer,
            ChannelBindingMode::Disable,
            ChannelBindingMode::Require,
        ]),
        require_auth: match rng.below(6) {
            0 => Some(RequireAuth::parse("scram-sha-256").unwrap()),
            1 => Some(RequireAuth::parse("!none").unwrap()),
            2 => Some(RequireAuth::parse("password,md5").unwrap()),
            _ => None,
        },
        max_protocol_version: max_protocol,
        min_protocol_version: if rng.one_in(2) {
            max_protocol
        } else {
            PROTOCOL_3_0
        },
    }
}

/// Feeds `stream` to the session in random pieces, drawing every event; returns the error
/// that failed the session, if any. Checks that it makes progress and that a failure sticks.
fn drive(rng: &mut Rng, s: &mut Session, stream: &[u8], ready_request: bool) -> Option<Error> {
    // A frame costs at least 5 bytes: that bounds the events one stream can yield.
    let mut budget = stream.len() / 5 + 2;
    let mut binary_copy = None;
    let mut decoder = pgoutput::Decoder::new(rng.one_in(2));
    let mut rest = stream;
    let mut error = None;
    while !rest.is_empty() && error.is_none() {
        let n = 1 + rng.size(rest.len() - 1).min(rest.len() - 1);
        let n = if rng.one_in(3) { rest.len() } else { n };
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        let borrowed = rng.one_in(2);
        if borrowed {
            // SAFETY: `chunk` outlives `end_borrowed` below, and no event is kept past it.
            unsafe { s.feed_borrowed(chunk) };
        } else {
            s.feed(chunk);
        }
        loop {
            match s.next_event() {
                Ok(Some(event)) => {
                    if trace() {
                        eprintln!("event {event:?}");
                    }
                    assert!(budget > 0, "more events than the stream can hold");
                    budget -= 1;
                    inspect(&event, &mut binary_copy, &mut decoder);
                }
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        if borrowed {
            s.end_borrowed();
        }
        // Sometimes the client sends more while the answer arrives.
        if ready_request && s.is_ready() && rng.one_in(8) {
            let (mut req, expects) = request(rng);
            if trace() {
                eprintln!("submit {expects:?}");
            }
            let _ = s.submit(&mut req);
        }
    }
    if let Some(e) = &error {
        // A failure is sticky: no more events, the same error again, no new requests.
        if s.failure().is_some() {
            assert!(s.is_closed());
            assert_eq!(s.next_event().err().as_ref(), Some(e));
            let mut req = Request::new();
            req.sync();
            assert!(s.submit(&mut req).is_err());
        }
    }
    error
}

/// Whether `PGOXIDE_FUZZ_TRACE` asks for every event and request to be printed (for replays).
fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("PGOXIDE_FUZZ_TRACE").is_some())
}

/// Authenticates a session with the shortest trust exchange.
fn ready_session(rng: &mut Rng, max_message_size: usize) -> Session {
    let mut cfg = config(rng, max_message_size);
    cfg.require_auth = None;
    cfg.channel_binding = ChannelBindingMode::Prefer;
    let mut s = Session::new(cfg);
    s.feed(&frame(b'R', &0i32.to_be_bytes()));
    s.feed(&frame(b'Z', b"I"));
    while s.next_event().unwrap().is_some() {}
    assert!(s.is_ready());
    s
}

// ---------------------------------------------------------------------------------------------
// Targets.

const MAX_MESSAGE_SIZES: &[usize] = &[16, 64, 1024, 65536];

/// Memory a session or read buffer may hold: the buffer's own start, room for one message
/// (doubling growth), and the input with the parsers' work on it.
fn buffer_budget(max_message_size: usize, input_len: usize) -> usize {
    budget(input_len) + 64 * 1024 + 4 * (max_message_size + 5)
}

fn framing_case(rng: &mut Rng, c: &mut Case) {
    let max = *rng.pick(MAX_MESSAGE_SIZES);
    let mut msgs: Vec<Msg> = (0..rng.below(12)).map(|_| any_message(rng)).collect();
    mutate_messages(rng, &mut msgs);
    let (mut stream, _) = serialize(rng, &msgs, true);
    if rng.one_in(5) {
        let rounds = 1 + rng.size(4);
        mutate_bytes(rng, &mut stream, rounds, &[]);
    }
    if rng.one_in(10) {
        stream = rng.blob(200);
    }
    // A header announcing more than the limit, with some of its body after it.
    let oversized = rng.one_in(4).then(|| {
        let spread = *rng.pick(&[1, 100, 1 << 20, 1 << 30]);
        let size = max + 1 + rng.below(spread);
        let at = stream.len();
        stream.push(b'D');
        stream.extend_from_slice(&((size + 4) as u32).to_be_bytes());
        let extra = rng.size(64);
        stream.extend(rng.bytes(extra));
        (at, size)
    });
    c.input.clone_from(&stream);
    c.budget = buffer_budget(max, stream.len());

    let mut rb = ReadBuffer::new(max);
    let mut rest = &stream[..];
    let mut fed = 0usize;
    let mut consumed = 0usize;
    let mut frames = 0usize;
    let mut error = None;
    while !rest.is_empty() && error.is_none() {
        let n = (1 + rng.size(rest.len())).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        fed += n;
        let borrowed = rng.one_in(2);
        if borrowed {
            // SAFETY: `chunk` outlives `end_borrowed`; bodies are read before it.
            unsafe { rb.feed_borrowed(chunk) };
        } else {
            rb.feed(chunk);
        }
        loop {
            match rb.next_frame() {
                Ok(Some(f)) => {
                    frames += 1;
                    assert!(frames <= fed / 5, "more frames than bytes allow");
                    let body = rb.body(f);
                    assert!(body.len() <= max, "a frame larger than the limit");
                    assert_eq!(body.len(), f.end - f.start);
                    consumed += 5 + body.len();
                }
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        if borrowed {
            rb.end_borrowed();
        }
        if error.is_none() {
            assert_eq!(rb.pending(), fed - consumed, "bytes lost or invented");
        }
        rb.shrink_if_idle();
    }
    if let Some((at, size)) = oversized {
        // Reached intact (nothing before it failed), the oversized header must be refused
        // from the header alone.
        if consumed == at {
            match &error {
                Some(Error::MessageTooLarge {
                    tag: b'D',
                    size: s,
                    limit,
                }) => {
                    assert_eq!((*s, *limit), (size, max));
                }
                other => panic!("oversized message not refused: {other:?}"),
            }
        }
    }
    if let Some(e) = error {
        assert!(
            matches!(e, Error::Protocol(_) | Error::MessageTooLarge { .. }),
            "{e:?}"
        );
    }
}

fn session_case(rng: &mut Rng, c: &mut Case) {
    let max = *rng.pick(MAX_MESSAGE_SIZES);
    let startup = rng.one_in(3);
    let (mut s, msgs) = if startup {
        let s = Session::new(config(rng, max));
        let mut msgs = vec![match rng.below(8) {
            0 => auth(3, &[]),
            1 => auth(5, &[1, 2, 3, 4]),
            2 => auth(10, b"SCRAM-SHA-256\0\0"),
            3 => auth(10, b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"),
            4 => (b'E', error_fields(rng, b"FATAL")),
            5 => {
                let mut b = 196_608i32.to_be_bytes().to_vec();
                b.extend_from_slice(&0i32.to_be_bytes());
                (b'v', b)
            }
            _ => auth(0, &[]),
        }];
        if rng.one_in(2) {
            msgs.push(auth(0, &[]));
        }
        for _ in 0..rng.below(4) {
            msgs.push(parameter_status(rng, true));
        }
        let mut key = 77i32.to_be_bytes().to_vec();
        // 32 bytes: a PostgreSQL 18 key in protocol 3.2 (refused in 3.0).
        let key_len = if rng.one_in(2) { 4 } else { 32 };
        key.extend(rng.bytes(key_len));
        msgs.push((b'K', key));
        msgs.push((b'Z', b"I".to_vec()));
        (s, msgs)
    } else {
        let mut s = ready_session(rng, max);
        let mut owed = Vec::new();
        for _ in 0..=rng.below(3) {
            let (mut req, expects) = request(rng);
            s.submit(&mut req).unwrap();
            if trace() {
                eprintln!("submit {expects:?}");
            }
            owed.extend(expects);
        }
        (s, responses(rng, &owed))
    };
    let mut msgs = msgs;
    let mutated = mutate_messages(rng, &mut msgs);
    let (mut stream, lied) = serialize(rng, &msgs, mutated);
    let mut bytes_mutated = false;
    if rng.one_in(6) {
        let rounds = 1 + rng.size(4);
        mutate_bytes(rng, &mut stream, rounds, &[]);
        bytes_mutated = true;
    }
    if rng.one_in(12) {
        stream = rng.blob(300);
        bytes_mutated = true;
    }
    c.input.clone_from(&stream);
    c.budget = buffer_budget(max, stream.len());
    let error = drive(rng, &mut s, &stream, !startup);
    if let Some(e) = &error {
        // Only a size limit the generated messages may exceed can refuse an unmutated stream.
        let valid = !startup && !mutated && !lied && !bytes_mutated;
        assert!(
            !valid || matches!(e, Error::MessageTooLarge { .. }),
            "a valid stream was refused: {e:?}"
        );
    }
}

fn backend_case(rng: &mut Rng, c: &mut Case) {
    let corpus = corpus();
    let (tag, mut body) = if rng.one_in(8) {
        (rng.byte(), rng.blob(64))
    } else {
        any_message(rng)
    };
    let splice: Vec<&[u8]> = (0..2)
        .map(|_| {
            corpus.messages[rng.below(corpus.messages.len())]
                .1
                .as_slice()
        })
        .collect();
    let rounds = rng.size(6);
    mutate_bytes(rng, &mut body, rounds, &splice);
    c.input.clone_from(&body);
    c.budget = budget(body.len());
    // Every parser on every body, whatever its tag said.
    let _ = tag;
    let _ = TransactionStatus::parse(&body).map(TransactionStatus::as_char);
    if let Ok(f) = ErrorFields::parse(&body) {
        let fields: Vec<_> = f.iter().collect();
        assert_eq!(
            f.get(b'C'),
            fields.iter().find(|(c, _)| *c == b'C').map(|(_, v)| *v)
        );
    }
    let _ = backend::parse_row_description(&body);
    let _ = backend::parse_parameter_description(&body);
    walk_data_row(&body);
    let _ = backend::parse_notification(&body);
    let _ = backend::parse_parameter_status(&body);
    let _ = backend::parse_command_complete(&body);
    let _ = backend::parse_backend_key_data(&body);
    let _ = backend::parse_copy_response(&body);
    if let Ok(m) = StreamMessage::parse(&body) {
        let _ = format!("{m:?}");
    }
}

/// Decodes `w` with the binary codec named, walking every iterator and nested value, and
/// encodes what decoded back (encoders may refuse, never panic).
fn binary_codec(name: &str, w: &[u8]) {
    let mut out = Vec::new();
    match name {
        "inet" => {
            if let Ok(v) = network::decode_inet(w) {
                let _ = v.host_bits_are_zero();
                let _ = network::encode_inet(&mut out, &v);
            }
        }
        "macaddr" => {
            let _ = network::decode_macaddr(w).map(|m| network::encode_macaddr(&mut out, m));
        }
        "macaddr8" => {
            let _ = network::decode_macaddr8(w).map(|m| network::encode_macaddr8(&mut out, m));
        }
        "bits" => {
            if let Ok(b) = bits::decode_bits(w) {
                assert_eq!(b.iter().count(), b.len);
                let _ = b.has_zero_padding();
                let _ = b.get(b.len.saturating_sub(1));
                let _ = bits::encode_bits(&mut out, b);
            }
        }
        "point" => {
            let _ = geometry::decode_point(w).map(|p| geometry::encode_point(&mut out, p));
        }
        "line" => {
            let _ = geometry::decode_line(w).map(|l| geometry::encode_line(&mut out, l));
        }
        "lseg" => {
            let _ = geometry::decode_lseg(w).map(|l| geometry::encode_lseg(&mut out, l));
        }
        "box" => {
            let _ = geometry::decode_box(w).map(|b| geometry::encode_box(&mut out, b));
        }
        "path" => {
            let _ = geometry::decode_path(w).map(|p| geometry::encode_path(&mut out, &p));
        }
        "polygon" => {
            let _ = geometry::decode_polygon(w).map(|p| geometry::encode_polygon(&mut out, &p));
        }
        "circle" => {
            let _ = geometry::decode_circle(w).map(|c| geometry::encode_circle(&mut out, c));
        }
        "range" => {
            if let Ok(r) = range::decode_range(w) {
                let copy = |b: &[u8]| {
                    let b = b.to_vec();
                    move |buf: &mut Vec<u8>| {
                        buf.extend_from_slice(&b);
                        Ok(())
                    }
                };
                if r.is_empty() {
                    range::encode_empty_range(&mut out);
                } else {
                    let _ = range::encode_range(
                        &mut out,
                        r.lower_bound().map(copy),
                        r.upper_bound().map(copy),
                    );
                }
            }
        }
        "multirange" => {
            if let Ok(ranges) = range::decode_multirange(w) {
                let mut enc = range::MultirangeEncoder::begin(&mut out);
                for bytes in ranges {
                    if let Ok(r) = range::decode_range(bytes) {
                        let _ = (r.lower_bound(), r.upper_bound());
                    }
                    let _ = enc.range_bytes(bytes);
                }
                let _ = enc.finish();
            }
        }
        "record" => {
            if let Ok(fields) = composite::decode_composite(w) {
                let mut enc = composite::CompositeEncoder::begin(&mut out);
                for (oid, value) in fields {
                    let _ = enc.field(oid, value);
                }
                let _ = enc.finish();
            }
        }
        "hstore" => {
            if let Ok(pairs) = hstore::decode_hstore(w) {
                let _ = hstore::encode_hstore(&mut out, pairs);
            }
        }
        "tid" => {
            let _ = misc::decode_tid(w).map(|t| misc::encode_tid(&mut out, t));
        }
        "pg_lsn" => {
            let _ = misc::decode_pg_lsn(w).map(|l| Lsn(l).to_string());
        }
        "snapshot" => {
            let _ = misc::decode_snapshot(w).map(|s| misc::encode_snapshot(&mut out, &s));
        }
        "jsonpath" => {
            let _ = misc::decode_jsonpath(w).map(|j| misc::encode_jsonpath(&mut out, j));
        }
        "money" => {
            let _ = misc::decode_money(w);
        }
        "xid" | "cid" | "xid8" => {
            let _ = (
                misc::decode_xid(w),
                misc::decode_cid(w),
                misc::decode_xid8(w),
            );
        }
        "oidvector" => {
            let _ = misc::decode_oidvector(w).map(|v| misc::encode_oidvector(&mut out, &v));
        }
        "int2vector" => {
            let _ = misc::decode_int2vector(w).map(|v| misc::encode_int2vector(&mut out, &v));
        }
        "array" => {
            if let Ok((h, _)) = array::decode_header(w) {
                let _ = h.element_count();
                array::encode_header(&mut out, &h);
            }
            let _ = text::text_array_literal(w, &mut out);
        }
        "numeric" => {
            let _ = numeric::decode_to_text(w, &mut out);
            let mut dec = Vec::new();
            let _ = numeric::decode_to_decimal_text(w, &mut dec);
            if let Ok(t) = std::str::from_utf8(&out) {
                let mut again = Vec::new();
                let _ = numeric::encode_from_text(t, &mut again);
            }
        }
        "datetime" => {
            if let Ok(v) = codec::decode_i32(w) {
                if let datetime::Bounded::Finite(d) = datetime::date_from_pg_days(v) {
                    if (1..=9999).contains(&d.year) {
                        let _ = datetime::pg_days_from_date(d);
                    }
                }
                let _ = datetime::pg_days_with_extremes_infinite(i64::from(v));
            }
            if let Ok(v) = codec::decode_i64(w) {
                let _ = datetime::time_from_usecs(v).map(datetime::usecs_from_time);
                if let datetime::Bounded::Finite((d, t)) = datetime::timestamp_from_pg_usecs(v) {
                    // The encoder's domain is Python's years (1 to 9999).
                    if (1..=9999).contains(&d.year) {
                        let _ = datetime::pg_usecs_from_timestamp(d, t);
                    }
                }
                let _ = datetime::pg_usecs_with_extremes_infinite(v);
                let _ = datetime::civil_from_unix_days(v % (1 << 40));
            }
            let _ = datetime::decode_timetz(w);
            if let Ok(iv) = datetime::decode_interval(w) {
                let _ = (iv.is_infinite(), iv.asyncpg_usecs());
                datetime::encode_interval(&mut out, iv);
            }
        }
        _ => {
            let _ = (
                codec::decode_bool(w),
                codec::decode_i16(w),
                codec::decode_u32(w),
                codec::decode_f32(w),
                codec::decode_f64(w),
                codec::decode_jsonb(w),
            );
        }
    }
}

const BINARY_CODECS: &[&str] = &[
    "inet",
    "macaddr",
    "macaddr8",
    "bits",
    "point",
    "line",
    "lseg",
    "box",
    "path",
    "polygon",
    "circle",
    "range",
    "multirange",
    "record",
    "hstore",
    "tid",
    "pg_lsn",
    "snapshot",
    "jsonpath",
    "money",
    "xid",
    "oidvector",
    "int2vector",
    "array",
    "numeric",
    "datetime",
    "scalar",
];

/// The binary codec that reads values of `oid`, by the codec names above.
fn codec_for_oid(oid: Oid) -> &'static str {
    if types::array_element(oid).is_some() {
        return "array";
    }
    match oid {
        types::NUMERIC => "numeric",
        types::DATE
        | types::TIME
        | types::TIMESTAMP
        | types::TIMESTAMPTZ
        | types::TIMETZ
        | types::INTERVAL => "datetime",
        types::INET | types::CIDR => "inet",
        types::MACADDR => "macaddr",
        types::MACADDR8 => "macaddr8",
        types::PG_LSN => "pg_lsn",
        _ => "scalar",
    }
}

/// A binary array: a header with edge-valued dimensions, then elements.
fn array_value(rng: &mut Rng) -> Vec<u8> {
    let ndim = rng.below(8);
    let mut b = Vec::new();
    b.extend_from_slice(&(ndim as i32).to_be_bytes());
    b.extend_from_slice(&(rng.below(2) as i32).to_be_bytes());
    b.extend_from_slice(&25u32.to_be_bytes());
    for _ in 0..ndim {
        let len = match rng.below(3) {
            0 => *rng.pick(INTERESTING_32),
            _ => rng.below(3) as i32,
        };
        b.extend_from_slice(&len.to_be_bytes());
        b.extend_from_slice(&(*rng.pick(&[1, 0, -5, i32::MAX, i32::MIN])).to_be_bytes());
    }
    for _ in 0..rng.below(6) {
        if rng.one_in(4) {
            b.extend_from_slice(&(-1i32).to_be_bytes());
        } else {
            let v = rng.blob(6);
            b.extend_from_slice(&(v.len() as i32).to_be_bytes());
            b.extend(v);
        }
    }
    b
}

fn binary_case(rng: &mut Rng, c: &mut Case) {
    let corpus = corpus();
    let (name, mut w) = match rng.below(4) {
        3 => ("array", array_value(rng)),
        0 => {
            let (n, v) = &corpus.binary[rng.below(corpus.binary.len())];
            (n.as_str(), v.clone())
        }
        1 => {
            let (oid, v, _) = &corpus.text[rng.below(corpus.text.len())];
            (codec_for_oid(*oid), v.clone())
        }
        _ => (*rng.pick(BINARY_CODECS), rng.blob(48)),
    };
    // Sometimes a codec is handed another type's value.
    let name = if rng.one_in(8) {
        *rng.pick(BINARY_CODECS)
    } else {
        name
    };
    let splice: Vec<&[u8]> = (0..2)
        .map(|_| corpus.binary[rng.below(corpus.binary.len())].1.as_slice())
        .collect();
    let rounds = rng.size(6);
    mutate_bytes(rng, &mut w, rounds, &splice);
    c.input.clone_from(&w);
    c.input.extend_from_slice(b" <- ");
    c.input.extend_from_slice(name.as_bytes());
    c.budget = budget(w.len());
    binary_codec(name, &w);
}

fn text_case(rng: &mut Rng, c: &mut Case) {
    let corpus = corpus();
    let (oid, mut t) = if rng.one_in(10) {
        let oid = *rng.pick(&[
            16u32, 20, 23, 1700, 1082, 1184, 1186, 869, 17, 1007, 1231, 2950,
        ]);
        (oid, rng.blob(40))
    } else {
        let (oid, _, t) = &corpus.text[rng.below(corpus.text.len())];
        (*oid, t.clone())
    };
    let oid = if rng.one_in(8) {
        corpus.text[rng.below(corpus.text.len())].0
    } else {
        oid
    };
    let splice: Vec<&[u8]> = (0..2)
        .map(|_| corpus.text[rng.below(corpus.text.len())].2.as_slice())
        .collect();
    let rounds = rng.size(6);
    mutate_bytes(rng, &mut t, rounds, &splice);
    c.input.clone_from(&t);
    c.budget = budget(t.len());
    let mut out = vec![7u8];
    let supported = text::is_supported(oid);
    match text::to_binary(oid, &t, &mut out) {
        Ok(done) => {
            assert_eq!(done, supported);
            if done {
                // What was produced decodes with the binary codec of the type.
                binary_codec(codec_for_oid(oid), &out[1..]);
            }
        }
        Err(e) => {
            assert!(matches!(e, Error::Decode(_)), "{e:?}");
            assert_eq!(out, [7], "output left behind on error");
        }
    }
    if let Some(element) = types::array_element(oid) {
        let mut out = Vec::new();
        if text::text_array_to_binary(oid, element, &t, &mut out).is_ok() {
            let mut literal = Vec::new();
            let _ = text::text_array_literal(&out, &mut literal);
        }
    }
    if let Ok(s) = std::str::from_utf8(&t) {
        let mut out = Vec::new();
        let _ = numeric::encode_from_text(s, &mut out);
        let _ = s.parse::<Lsn>();
    }
    let mut fields = Vec::new();
    let _ = copy::text_fields(&t, &mut fields);
}

fn copy_case(rng: &mut Rng, c: &mut Case) {
    let mut stream = if rng.one_in(2) {
        binary_copy_stream(rng)
    } else {
        let mut s = Vec::new();
        for _ in 0..rng.below(5) {
            let fields: Vec<Vec<u8>> = (0..rng.below(4)).map(|_| value(rng)).collect();
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    s.push(b'\t');
                }
                if rng.one_in(5) {
                    s.extend_from_slice(copy::TEXT_NULL);
                } else {
                    copy::escape_text(&mut s, f);
                }
            }
            s.push(b'\n');
        }
        s
    };
    let rounds = rng.size(6);
    mutate_bytes(rng, &mut stream, rounds, &[copy::SIGNATURE]);
    c.input.clone_from(&stream);
    c.budget = budget(stream.len());
    // Binary and text readers both read it, in random pieces.
    let mut reader = copy::BinaryReader::new();
    let mut text_reader = copy::TextReader::new();
    let mut tuples = 0usize;
    let mut lines = 0usize;
    let mut binary_failed = false;
    let mut rest = &stream[..];
    while !rest.is_empty() {
        let n = (1 + rng.size(rest.len())).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        if !binary_failed {
            let r = reader.feed::<Error>(chunk, |t| {
                tuples += 1;
                walk_data_row(t);
                Ok(())
            });
            binary_failed = r.is_err();
        }
        text_reader
            .feed::<Error>(chunk, |line| {
                lines += 1;
                let mut fields = Vec::new();
                let _ = copy::text_fields(line, &mut fields);
                Ok(())
            })
            .unwrap();
    }
    // A tuple is at least its 2-byte count; a line its newline.
    assert!(tuples <= stream.len() / 2 && lines <= stream.len());
    if !binary_failed {
        let _ = reader.finish();
    }
    let _ = text_reader.finish();
}

fn pgoutput_case(rng: &mut Rng, c: &mut Case) {
    let mut decoder = pgoutput::Decoder::new(rng.one_in(2));
    let corpus = corpus();
    let splice: Vec<&[u8]> = corpus.pgoutput.iter().take(4).map(Vec::as_slice).collect();
    let mut total = 0;
    c.input.clear();
    for _ in 0..=rng.below(4) {
        let mut m = if rng.one_in(10) {
            rng.blob(40)
        } else {
            pgoutput_message(rng)
        };
        let rounds = rng.size(5);
        mutate_bytes(rng, &mut m, rounds, &splice);
        total += m.len();
        c.input.clone_from(&m);
        let was = decoder.in_stream();
        match decoder.decode(&m) {
            Ok(msg) => {
                if let pgoutput::Message::Relation(r) = &msg {
                    assert!(r.columns.len() <= m.len() / 10);
                }
                if let pgoutput::Message::Truncate { relations, .. } = &msg {
                    assert!(relations.len() <= m.len() / 4);
                }
                walk_pgoutput(&mut pgoutput::Decoder::new(false), &m);
            }
            Err(e) => {
                assert!(matches!(e, Error::Protocol(_)), "{e:?}");
                assert_eq!(
                    decoder.in_stream(),
                    was,
                    "a malformed message changed the state"
                );
            }
        }
        let _ = pgoutput::decode(&m, rng.one_in(2), rng.one_in(2));
        let _ = StreamMessage::parse(&m);
    }
    c.budget = budget(total);
}

#[test]
fn fuzz_framing() {
    run("framing", framing_case);
}

#[test]
fn fuzz_session() {
    run("session", session_case);
}

#[test]
fn fuzz_backend_parsers() {
    run("backend", backend_case);
}

#[test]
fn fuzz_binary_codecs() {
    run("binary", binary_case);
}

#[test]
fn fuzz_text_codecs() {
    run("text", text_case);
}

#[test]
fn fuzz_copy() {
    run("copy", copy_case);
}

#[test]
fn fuzz_pgoutput() {
    run("pgoutput", pgoutput_case);
}

// ---------------------------------------------------------------------------------------------
// Regressions: each finding of the fuzzer, with its minimal bytes.

/// Peak bytes allocated on this thread while `f` runs.
fn peak_of(f: impl FnOnce()) -> usize {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    f();
    (PEAK.with(Cell::get) - base).max(0) as usize
}

/// A RowDescription's column count sized the column vector before any column was read: a
/// 2-byte body claiming 30464 columns allocated 1.4 MB before failing as malformed.
#[test]
fn regression_row_description_count_does_not_size_an_allocation() {
    let body = [0x77, 0x00];
    let peak = peak_of(|| {
        assert!(matches!(
            backend::parse_row_description(&body),
            Err(Error::Protocol(_))
        ));
    });
    assert!(peak < 4096, "{peak} bytes for a 2-byte message");
}
