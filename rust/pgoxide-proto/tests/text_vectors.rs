//! Every text output recorded from a real server (tests/vectors/text_pg15.txt, written by
//! tools/record_text_vectors.py) transcodes to exactly the bytes the type's send function
//! produced for the same value.

use pgoxide_proto::codec::text::{is_supported, to_binary};
use pgoxide_proto::types::{self, Oid};

struct Vector {
    line: usize,
    oid: Oid,
    send: Vec<u8>,
    text: Vec<u8>,
    expression: String,
}

fn hex(digits: &str) -> Vec<u8> {
    assert!(digits.len() % 2 == 0, "odd hex length: {digits}");
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// The recorder writes `%`, `|` and control characters as `%XX`.
fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.extend(hex(&text[i + 1..i + 3]));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn vectors() -> Vec<Vector> {
    include_str!("vectors/text_pg15.txt")
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#') && !l.is_empty())
        .map(|(i, l)| {
            let mut parts = l.splitn(4, '|');
            let mut next = || {
                parts
                    .next()
                    .unwrap_or_else(|| panic!("line {}: {l}", i + 1))
            };
            Vector {
                line: i + 1,
                oid: next().parse().expect("oid"),
                send: hex(next()),
                text: unescape(next()),
                expression: next().to_owned(),
            }
        })
        .collect()
}

#[test]
fn recorded_text_transcodes_to_recorded_send_output() {
    let vectors = vectors();
    assert!(vectors.len() > 250, "only {} vectors", vectors.len());
    let mut failures = Vec::new();
    for v in &vectors {
        // Something before the value must stay, and the value must be appended after it.
        let mut out = vec![0xEE];
        let outcome = to_binary(v.oid, &v.text, &mut out);
        if outcome != Ok(true) || out[0] != 0xEE || out[1..] != v.send[..] {
            failures.push(format!(
                "line {} ({}): {:?} -> {outcome:?} {:02x?}, server sent {:02x?}",
                v.line,
                v.expression,
                String::from_utf8_lossy(&v.text),
                &out[1..],
                v.send
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn vectors_cover_every_supported_type_and_its_array() {
    let recorded: std::collections::HashSet<Oid> = vectors().iter().map(|v| v.oid).collect();
    let mut missing = Vec::new();
    for oid in 1..10_000 {
        if is_supported(oid) && !recorded.contains(&oid) {
            missing.push(types::name(oid).unwrap_or_default());
        }
    }
    assert!(missing.is_empty(), "no vector for {missing:?}");
}
