//! numeric: the base-10000 binary format to and from decimal text.
//!
//! Text is the interchange with Python's `Decimal` (whose constructor and `str()` are the
//! cheapest exact paths), so this module converts between the wire digits and a decimal
//! string exactly, keeping the display scale (trailing zeros) as PostgreSQL does.

use crate::error::{Error, Result};

const SIGN_POS: u16 = 0x0000;
const SIGN_NEG: u16 = 0x4000;
const SIGN_NAN: u16 = 0xC000;
const SIGN_PINF: u16 = 0xD000;
const SIGN_NINF: u16 = 0xF000;
const NBASE: u32 = 10_000;
/// PostgreSQL's limits: 131072 digits before the point, 16383 after.
const MAX_WEIGHT_GROUPS: i64 = 131_072 / 4;
const MAX_DSCALE: i64 = 16_383;

/// A finite binary numeric's header fields.
struct Header {
    ndigits: usize,
    weight: i64,
    sign: u16,
    dscale: i64,
}

/// Checks a binary numeric's header; NaN and the infinities are written to `out` as text
/// and give None.
fn read_header(data: &[u8], out: &mut Vec<u8>) -> Result<Option<Header>> {
    let bad = || Error::decode("invalid numeric value");
    if data.len() < 8 || data.len() % 2 != 0 {
        return Err(bad());
    }
    let rd = |i: usize| u16::from_be_bytes([data[i], data[i + 1]]);
    let ndigits = rd(0) as usize;
    let weight = i64::from(rd(2) as i16);
    let sign = rd(4);
    let dscale = i64::from(rd(6));
    if data.len() != 8 + 2 * ndigits || dscale > 0x3FFF {
        return Err(bad());
    }
    let special: &[u8] = match sign {
        SIGN_NAN => b"NaN",
        SIGN_PINF => b"Infinity",
        SIGN_NINF => b"-Infinity",
        SIGN_POS | SIGN_NEG => {
            return Ok(Some(Header {
                ndigits,
                weight,
                sign,
                dscale,
            }))
        }
        _ => return Err(bad()),
    };
    out.extend_from_slice(special);
    Ok(None)
}

/// Appends the decimal text of a binary numeric to `out`, in ASCII (`NaN`, `Infinity`,
/// `-Infinity`, or digits with exactly `dscale` fractional digits).
pub fn decode_to_text(data: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let bad = || Error::decode("invalid numeric value");
    let Some(Header {
        ndigits,
        weight,
        sign,
        dscale,
    }) = read_header(data, out)?
    else {
        return Ok(());
    };
    let rd = |i: usize| u16::from_be_bytes([data[i], data[i + 1]]);
    let digit = |i: i64| -> Result<u32> {
        if i < 0 || i as usize >= ndigits {
            return Ok(0);
        }
        let d = u32::from(rd(8 + 2 * i as usize));
        if d >= NBASE {
            return Err(bad());
        }
        Ok(d)
    };
    if sign == SIGN_NEG {
        out.push(b'-');
    }
    if weight < 0 {
        out.push(b'0');
    } else {
        push_group(out, digit(0)?, false);
        for i in 1..=weight {
            push_group(out, digit(i)?, true);
        }
    }
    if dscale > 0 {
        out.push(b'.');
        let start = out.len();
        let mut i = weight + 1;
        while ((out.len() - start) as i64) < dscale {
            push_group(out, digit(i)?, true);
            i += 1;
        }
        out.truncate(start + dscale as usize);
    }
    Ok(())
}

/// Appends the text of a binary numeric in the form asyncpg hands to `Decimal`, so that the
/// `Decimal` has asyncpg's digits and exponent: `0.<digits>E<exponent>` with the base-10000
/// digits as sent (the first without leading zeros when it is before the point), trailing
/// fractional zeros made to match the display scale, and the integer part's zeros past the
/// last sent digit left to the exponent. `1E+1000` stays `Decimal('1E+1000')` (digits `(1,)`,
/// exponent 1000), `10000` is `Decimal('1E+4')`, `100` is `Decimal('100')`, `1.10` is
/// `Decimal('1.10')`, a zero is `0E-<dscale>`, and `NaN`, `Infinity` and `-Infinity` as they are.
pub fn decode_to_decimal_text(data: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let bad = || Error::decode("invalid numeric value");
    let Some(Header {
        ndigits,
        weight,
        sign,
        dscale,
    }) = read_header(data, out)?
    else {
        return Ok(());
    };
    let rd = |i: usize| u16::from_be_bytes([data[i], data[i + 1]]);
    if ndigits == 0 {
        out.extend_from_slice(b"0E-");
        push_int(out, dscale.unsigned_abs());
        return Ok(());
    }
    if sign == SIGN_NEG {
        out.push(b'-');
    }
    out.extend_from_slice(b"0.");
    let digits_start = out.len();
    let mut front_padding = 0;
    for i in 0..ndigits {
        let d = u32::from(rd(8 + 2 * i));
        if d >= NBASE {
            return Err(bad());
        }
        if i == 0 && weight >= 0 {
            let before = out.len();
            push_group(out, d, false);
            front_padding = 4 - (out.len() - before) as i64;
        } else {
            push_group(out, d, true);
        }
    }
    if dscale != 0 {
        // Fractional digits sent, against the display scale: pad with zeros, or drop the
        // zeros of the last group past the scale.
        let adjust = dscale - (ndigits as i64 - weight - 1) * 4;
        if adjust > 0 {
            out.resize(out.len() + adjust as usize, b'0');
        } else {
            let keep = out.len() as i64 + adjust;
            if keep < digits_start as i64 {
                return Err(bad());
            }
            out.truncate(keep as usize);
        }
    }
    let exponent = (weight + 1) * 4 - front_padding;
    if exponent != 0 {
        out.extend_from_slice(if exponent < 0 { b"E-" } else { b"E+" });
        push_int(out, exponent.unsigned_abs());
    }
    Ok(())
}

/// Appends the decimal digits of `n`.
fn push_int(out: &mut Vec<u8>, mut n: u64) {
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

/// Appends one base-10000 digit group: four decimal digits, or without leading zeros for the
/// first group. Written by hand because `core::fmt` showed up in profiles of numeric columns.
#[inline]
fn push_group(out: &mut Vec<u8>, group: u32, padded: bool) {
    let digits =
        [group / 1000, group / 100 % 10, group / 10 % 10, group % 10].map(|d| b'0' + d as u8);
    if padded {
        // A fixed length: four stores, where a slice of varying length would call memcpy.
        out.extend_from_slice(&digits);
        return;
    }
    let skip = digits[..3].iter().take_while(|&&d| d == b'0').count();
    for &d in &digits[skip..] {
        out.push(d);
    }
}

/// Encodes decimal text (`[+-]digits[.digits][e[+-]exp]`, `NaN`, `Infinity`, `inf`) into the
/// binary numeric format.
pub fn encode_from_text(text: &str, buf: &mut Vec<u8>) -> Result<()> {
    let invalid = || Error::Encode(format!("invalid numeric value {text:?}"));
    let t = text.trim();
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let special = |buf: &mut Vec<u8>, sign: u16| {
        buf.extend_from_slice(&[0, 0, 0, 0]);
        buf.extend_from_slice(&sign.to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
    };
    if body.eq_ignore_ascii_case("nan") {
        special(buf, SIGN_NAN);
        return Ok(());
    }
    if body.eq_ignore_ascii_case("infinity") || body.eq_ignore_ascii_case("inf") {
        special(buf, if negative { SIGN_NINF } else { SIGN_PINF });
        return Ok(());
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(p) => {
            let e: i64 = body[p + 1..].parse().map_err(|_| invalid())?;
            (&body[..p], e)
        }
        None => (body, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(invalid());
    }
    // value = digits * 10^exp10, with dscale = digits after the point (never negative).
    let exp10 = exponent
        .checked_sub(frac_part.len() as i64)
        .filter(|e| e.unsigned_abs() <= (4 * MAX_WEIGHT_GROUPS + MAX_DSCALE) as u64)
        .ok_or_else(|| Error::Encode(format!("numeric value {text:?} is out of range")))?;
    let dscale = (-exp10).max(0);
    let digits: Vec<u8> = int_part
        .bytes()
        .chain(frac_part.bytes())
        .map(|b| b - b'0')
        .collect();
    // Position of the decimal point, counted in digits from the left of `digits`.
    let point = digits.len() as i64 + exp10;
    // Align groups of four on the decimal point: pad on the left so `point` is a multiple of 4.
    let lead = (4 - point.rem_euclid(4)) % 4;
    let first_weight = (point + lead) / 4 - 1;
    let total = lead + digits.len() as i64;
    let ngroups = (total + 3) / 4;
    let mut groups: Vec<i16> = Vec::with_capacity(ngroups as usize);
    for g in 0..ngroups {
        let mut v: i16 = 0;
        for k in 0..4 {
            let idx = g * 4 + k - lead;
            let d = if idx >= 0 && (idx as usize) < digits.len() {
                digits[idx as usize]
            } else {
                0
            };
            v = v * 10 + i16::from(d);
        }
        groups.push(v);
    }
    let mut weight = first_weight;
    let leading_zeros = groups.iter().take_while(|&&g| g == 0).count();
    groups.drain(..leading_zeros);
    weight -= leading_zeros as i64;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    if dscale > MAX_DSCALE || weight >= MAX_WEIGHT_GROUPS {
        return Err(Error::Encode(format!(
            "numeric value {text:?} is out of range"
        )));
    }
    let sign = if negative && !groups.is_empty() {
        SIGN_NEG
    } else {
        SIGN_POS
    };
    buf.extend_from_slice(&(groups.len() as u16).to_be_bytes());
    buf.extend_from_slice(&(weight as i16).to_be_bytes());
    buf.extend_from_slice(&sign.to_be_bytes());
    buf.extend_from_slice(&(dscale as u16).to_be_bytes());
    for g in groups {
        buf.extend_from_slice(&g.to_be_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(s: &str) -> String {
        let mut b = Vec::new();
        encode_from_text(s, &mut b).unwrap();
        let mut out = Vec::new();
        decode_to_text(&b, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn known_encodings() {
        let mut b = Vec::new();
        encode_from_text("12345.678", &mut b).unwrap();
        // ndigits 3, weight 1, pos, dscale 3, digits 1 2345 6780
        assert_eq!(b, [0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1A, 0x7C]);
        b.clear();
        encode_from_text("0.0001", &mut b).unwrap();
        assert_eq!(b, [0, 1, 0xFF, 0xFF, 0, 0, 0, 4, 0, 1]);
    }

    #[test]
    fn text_forms() {
        assert_eq!(round_trip("0"), "0");
        assert_eq!(round_trip("-0.00"), "0.00");
        assert_eq!(round_trip("1.50"), "1.50");
        assert_eq!(round_trip("-123456789.000000001"), "-123456789.000000001");
        assert_eq!(round_trip("1E+5"), "100000");
        assert_eq!(round_trip("1.23E-7"), "0.000000123");
        assert_eq!(round_trip("NaN"), "NaN");
        assert_eq!(round_trip("-Infinity"), "-Infinity");
        assert_eq!(round_trip("inf"), "Infinity");
        assert_eq!(round_trip("10000"), "10000");
        assert_eq!(round_trip(".5"), "0.5");
        assert_eq!(round_trip("5."), "5");
    }

    fn decimal_text(s: &str) -> String {
        let mut b = Vec::new();
        encode_from_text(s, &mut b).unwrap();
        let mut out = Vec::new();
        decode_to_decimal_text(&b, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn decimal_text_forms_as_asyncpg() {
        // What asyncpg 0.32's numeric_decode_binary hands to Decimal for the same bytes.
        assert_eq!(decimal_text("0"), "0E-0");
        assert_eq!(decimal_text("0.00"), "0E-2");
        assert_eq!(decimal_text("1E+1000"), "0.1E+1001");
        assert_eq!(decimal_text("100"), "0.100E+3");
        assert_eq!(decimal_text("10000"), "0.1E+5");
        assert_eq!(decimal_text("-100000"), "-0.10E+6");
        assert_eq!(decimal_text("1.10"), "0.110E+1");
        assert_eq!(decimal_text("-0.001"), "-0.001");
        assert_eq!(decimal_text("1000.0"), "0.10000E+4");
        assert_eq!(decimal_text("0.000000001"), "0.1E-8");
        assert_eq!(decimal_text("NaN"), "NaN");
        assert_eq!(decimal_text("Infinity"), "Infinity");
        assert_eq!(decimal_text("-Infinity"), "-Infinity");
        let mut s = Vec::new();
        assert!(decode_to_decimal_text(&[0, 1, 0, 0, 0, 0, 0, 0], &mut s).is_err());
        assert!(decode_to_decimal_text(&[0, 1, 0, 0, 0, 0, 0, 0, 0x27, 0x10], &mut s).is_err());
        assert!(decode_to_decimal_text(&[0, 0, 0, 0, 0x12, 0, 0, 0], &mut s).is_err());
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "-",
            ".",
            "1.2.3",
            "1e",
            "abc",
            "1e99999999",
            // The extreme exponents: their magnitude does not fit an i64.
            "1e-9223372036854775808",
            "0.1e-9223372036854775807",
            "sNaN",
            "1_0",
        ] {
            assert!(encode_from_text(bad, &mut Vec::new()).is_err(), "{bad}");
        }
        let mut s = Vec::new();
        assert!(decode_to_text(&[0, 1, 0, 0, 0, 0, 0, 0], &mut s).is_err());
        assert!(decode_to_text(&[0, 1, 0, 0, 0, 0, 0, 0, 0x27, 0x10], &mut s).is_err());
        assert!(decode_to_text(&[0, 0, 0, 0, 0x12, 0, 0, 0], &mut s).is_err());
    }

    proptest! {
        #[test]
        fn integer_and_fraction_round_trip(i in any::<i64>(), f in 0u64..1_000_000_000, scale in 0usize..10) {
            let frac = format!("{f:09}");
            let s = if scale == 0 { i.to_string() } else { format!("{i}.{}", &frac[..scale]) };
            let expect = if s.starts_with("-0") && s.trim_start_matches(['-', '0', '.']).is_empty() {
                s[1..].to_string()
            } else {
                s.clone()
            };
            prop_assert_eq!(round_trip(&s), expect);
        }

        #[test]
        fn decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = decode_to_text(&data, &mut Vec::new());
            let _ = decode_to_decimal_text(&data, &mut Vec::new());
        }
    }
}
