//! Every value recorded from a real server's send functions (tests/vectors/send_pg15.txt)
//! decodes through the public codec API and encodes back to the same bytes; element codecs
//! compose with the container formats (range bounds, composite fields, hstore text).

use std::ops::Bound;

use pgoxide_proto::codec::{
    self, bits, composite, datetime, geometry, hstore, misc, network, numeric, range,
};
use pgoxide_proto::error::Result;
use pgoxide_proto::types;

struct Vector {
    codec: String,
    wire: Vec<u8>,
    expression: String,
}

fn vectors() -> Vec<Vector> {
    let text = include_str!("vectors/send_pg15.txt");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let mut parts = l.splitn(3, '|');
            let codec = parts.next().unwrap().to_owned();
            let hex = parts.next().unwrap();
            let expression = parts.next().unwrap().to_owned();
            let wire = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            Vector {
                codec,
                wire,
                expression,
            }
        })
        .collect()
}

fn copy(bytes: &[u8]) -> impl FnOnce(&mut Vec<u8>) -> Result<()> + '_ {
    move |b| {
        b.extend_from_slice(bytes);
        Ok(())
    }
}

/// Decodes `wire` with the codec named in the file and encodes the result again.
fn round_trip(v: &Vector) -> Vec<u8> {
    let w = v.wire.as_slice();
    let mut out = Vec::new();
    match v.codec.as_str() {
        "inet" => network::encode_inet(&mut out, &network::decode_inet(w).unwrap()).unwrap(),
        "macaddr" => network::encode_macaddr(&mut out, network::decode_macaddr(w).unwrap()),
        "macaddr8" => network::encode_macaddr8(&mut out, network::decode_macaddr8(w).unwrap()),
        "bits" => bits::encode_bits(&mut out, bits::decode_bits(w).unwrap()).unwrap(),
        "point" => geometry::encode_point(&mut out, geometry::decode_point(w).unwrap()),
        "line" => geometry::encode_line(&mut out, geometry::decode_line(w).unwrap()).unwrap(),
        "lseg" => geometry::encode_lseg(&mut out, geometry::decode_lseg(w).unwrap()),
        "box" => geometry::encode_box(&mut out, geometry::decode_box(w).unwrap()),
        "path" => geometry::encode_path(&mut out, &geometry::decode_path(w).unwrap()).unwrap(),
        "polygon" => {
            geometry::encode_polygon(&mut out, &geometry::decode_polygon(w).unwrap()).unwrap();
        }
        "circle" => {
            geometry::encode_circle(&mut out, geometry::decode_circle(w).unwrap()).unwrap();
        }
        "range" => {
            let r = range::decode_range(w).unwrap();
            if r.is_empty() {
                range::encode_empty_range(&mut out);
            } else {
                range::encode_range(
                    &mut out,
                    r.lower_bound().map(copy),
                    r.upper_bound().map(copy),
                )
                .unwrap();
            }
        }
        "multirange" => {
            let mut enc = range::MultirangeEncoder::begin(&mut out);
            for bytes in range::decode_multirange(w).unwrap() {
                let r = range::decode_range(bytes).unwrap();
                enc.range(r.lower_bound().map(copy), r.upper_bound().map(copy))
                    .unwrap();
            }
            enc.finish().unwrap();
        }
        "record" => {
            let mut enc = composite::CompositeEncoder::begin(&mut out);
            for (oid, value) in composite::decode_composite(w).unwrap() {
                enc.field(oid, value).unwrap();
            }
            enc.finish().unwrap();
        }
        "hstore" => hstore::encode_hstore(&mut out, hstore::decode_hstore(w).unwrap()).unwrap(),
        "tid" => misc::encode_tid(&mut out, misc::decode_tid(w).unwrap()),
        "pg_lsn" => misc::encode_pg_lsn(&mut out, misc::decode_pg_lsn(w).unwrap()),
        "snapshot" => {
            misc::encode_snapshot(&mut out, &misc::decode_snapshot(w).unwrap()).unwrap();
        }
        "jsonpath" => misc::encode_jsonpath(&mut out, misc::decode_jsonpath(w).unwrap()),
        "money" => misc::encode_money(&mut out, misc::decode_money(w).unwrap()),
        "xid" => misc::encode_xid(&mut out, misc::decode_xid(w).unwrap()),
        "cid" => misc::encode_cid(&mut out, misc::decode_cid(w).unwrap()),
        "xid8" => misc::encode_xid8(&mut out, misc::decode_xid8(w).unwrap()),
        "oidvector" => {
            let oids = misc::decode_oidvector(w).unwrap();
            if oids.is_empty() {
                // Sent by the server, refused by its receive function.
                assert!(misc::encode_oidvector(&mut out, &oids).is_err());
                return w.to_vec();
            }
            misc::encode_oidvector(&mut out, &oids).unwrap();
        }
        "int2vector" => {
            misc::encode_int2vector(&mut out, &misc::decode_int2vector(w).unwrap()).unwrap();
        }
        other => panic!("no codec {other}"),
    }
    out
}

#[test]
fn every_recorded_value_round_trips() {
    let vectors = vectors();
    assert!(vectors.len() > 80, "vector file not found or truncated");
    for v in &vectors {
        assert_eq!(round_trip(v), v.wire, "{}", v.expression);
    }
}

/// Decodes with the named codec, walking every iterator and nested range; the outcome only.
fn decodes(codec: &str, w: &[u8]) -> bool {
    match codec {
        "inet" => network::decode_inet(w).is_ok(),
        "macaddr" => network::decode_macaddr(w).is_ok(),
        "macaddr8" => network::decode_macaddr8(w).is_ok(),
        "bits" => bits::decode_bits(w).is_ok_and(|b| b.iter().count() == b.len),
        "point" => geometry::decode_point(w).is_ok(),
        "line" => geometry::decode_line(w).is_ok(),
        "lseg" => geometry::decode_lseg(w).is_ok(),
        "box" => geometry::decode_box(w).is_ok(),
        "path" => geometry::decode_path(w).is_ok(),
        "polygon" => geometry::decode_polygon(w).is_ok(),
        "circle" => geometry::decode_circle(w).is_ok(),
        "range" => range::decode_range(w).is_ok(),
        "multirange" => range::decode_multirange(w)
            .is_ok_and(|mut rs| rs.all(|r| range::decode_range(r).is_ok())),
        "record" => composite::decode_composite(w).is_ok_and(|fs| fs.len() == fs.clone().count()),
        "hstore" => hstore::decode_hstore(w).is_ok(),
        "tid" => misc::decode_tid(w).is_ok(),
        "pg_lsn" => misc::decode_pg_lsn(w).is_ok(),
        "snapshot" => misc::decode_snapshot(w).is_ok(),
        "jsonpath" => misc::decode_jsonpath(w).is_ok(),
        "money" => misc::decode_money(w).is_ok(),
        "xid" => misc::decode_xid(w).is_ok(),
        "cid" => misc::decode_cid(w).is_ok(),
        "xid8" => misc::decode_xid8(w).is_ok(),
        "oidvector" => misc::decode_oidvector(w).is_ok(),
        "int2vector" => misc::decode_int2vector(w).is_ok(),
        other => panic!("no codec {other}"),
    }
}

/// Truncations, byte substitutions and extensions of every recorded value: each decodes or
/// fails with an error, never a panic; a truncated value never decodes where the format
/// has no optional tail.
#[test]
fn mutated_values_fail_cleanly() {
    for v in vectors() {
        assert!(decodes(&v.codec, &v.wire), "{}", v.expression);
        for cut in 0..v.wire.len() {
            let ok = decodes(&v.codec, &v.wire[..cut]);
            // Only jsonpath (version byte + text) has valid prefixes.
            if v.codec != "jsonpath" {
                assert!(!ok, "{} cut at {cut}", v.expression);
            }
        }
        for i in 0..v.wire.len() {
            for byte in [0x00, 0x01, 0x7F, 0x80, 0xFF, v.wire[i].wrapping_add(1)] {
                let mut m = v.wire.clone();
                m[i] = byte;
                decodes(&v.codec, &m);
            }
        }
        for tail in [&[0u8][..], &[0xFF; 4], &[0; 17]] {
            decodes(&v.codec, &[v.wire.as_slice(), tail].concat());
        }
    }
}

fn lookup(expression: &str) -> Vec<u8> {
    vectors()
        .into_iter()
        .find(|v| v.expression == expression)
        .unwrap_or_else(|| panic!("no vector for {expression}"))
        .wire
}

fn numeric_text(data: &[u8]) -> String {
    let mut s = Vec::new();
    numeric::decode_to_text(data, &mut s).unwrap();
    String::from_utf8(s).unwrap()
}

#[test]
fn range_bounds_decode_with_element_codecs() {
    let wire = lookup("range_send('[1.5,2.5]'::numrange)");
    let r = range::decode_range(&wire).unwrap();
    let Bound::Included(lo) = r.lower_bound() else {
        panic!()
    };
    let Bound::Included(hi) = r.upper_bound() else {
        panic!()
    };
    assert_eq!(
        (numeric_text(lo), numeric_text(hi)),
        ("1.5".into(), "2.5".into())
    );

    let wire = lookup("range_send(numrange(NULL, 2.5, '[]'))");
    let r = range::decode_range(&wire).unwrap();
    assert_eq!(r.lower_bound(), Bound::Unbounded);
    assert!(matches!(r.upper_bound(), Bound::Included(b) if numeric_text(b) == "2.5"));

    let wire = lookup("range_send('[2000-01-01,2000-01-02)'::tsrange)");
    let r = range::decode_range(&wire).unwrap();
    let Bound::Excluded(hi) = r.upper_bound() else {
        panic!()
    };
    let datetime::Bounded::Finite((date, _)) =
        datetime::timestamp_from_pg_usecs(codec::decode_i64(hi).unwrap())
    else {
        panic!()
    };
    assert_eq!((date.year, date.month, date.day), (2000, 1, 2));

    // Encoding a numrange with the numeric codec writing each bound in place.
    let mut buf = Vec::new();
    range::encode_range(
        &mut buf,
        Bound::Included(|b: &mut Vec<u8>| numeric::encode_from_text("1.5", b)),
        Bound::Included(|b: &mut Vec<u8>| numeric::encode_from_text("2.5", b)),
    )
    .unwrap();
    assert_eq!(buf, lookup("range_send('[1.5,2.5]'::numrange)"));
}

#[test]
fn composite_fields_decode_with_element_codecs() {
    let wire = lookup("record_send(ROW(1,NULL::text,2::int8))");
    let fields: Vec<_> = composite::decode_composite(&wire).unwrap().collect();
    assert_eq!(fields.len(), 3);
    assert_eq!(fields[0].0, types::INT4);
    assert_eq!(codec::decode_i32(fields[0].1.unwrap()).unwrap(), 1);
    assert_eq!(fields[1], (types::TEXT, None));
    assert_eq!(codec::decode_i64(fields[2].1.unwrap()).unwrap(), 2);

    // The array field of a nested composite, through the array header codec.
    let wire = lookup("record_send(ROW(ROW(7,'hi')::inner_t,1.5,'{3}')::outer_t)");
    let fields: Vec<_> = composite::decode_composite(&wire).unwrap().collect();
    assert_eq!(numeric_text(fields[1].1.unwrap()), "1.5");
    let (header, _) = codec::array::decode_header(fields[2].1.unwrap()).unwrap();
    assert_eq!(
        (header.element_oid, header.element_count()),
        (types::INT4, 1)
    );
}

#[test]
fn hstore_text_is_utf8_bytes() {
    let wire = lookup("hstore_send('\"ключ\"=>\"значение\"'::hstore)");
    let pairs = hstore::decode_hstore(&wire).unwrap();
    assert_eq!(std::str::from_utf8(pairs[0].0).unwrap(), "ключ");
    assert_eq!(
        std::str::from_utf8(pairs[0].1.unwrap()).unwrap(),
        "значение"
    );
}
