//! Server certificates made by tools/gen_cert_vectors.py: the tls-server-end-point data the
//! core computes for each signature algorithm, and libpq's verify-full host-name verdicts.

use std::path::Path;

use pgoxide_proto::certificate::{
    end_point_hash, tls_server_end_point, verify_host_name, EndPointHash,
};
use pgoxide_proto::Error;

fn certs() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/certs"))
}

fn der(file: &str) -> Vec<u8> {
    std::fs::read(certs().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        write!(s, "{b:02x}").unwrap();
        s
    })
}

fn vectors(kind: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(certs().join("vectors.txt")).unwrap();
    text.lines()
        .filter(|l| l.starts_with(kind))
        .map(|l| l.splitn(5, ' ').map(str::to_owned).collect())
        .collect()
}

#[test]
fn end_point_hash_follows_the_signature_algorithm() {
    let cases = vectors("hash ");
    assert_eq!(cases.len(), 7);
    for case in cases {
        let (file, expected) = (&case[1], &case[2]);
        let data = der(file);
        if expected == "error" {
            let Err(Error::Certificate(message)) = tls_server_end_point(&data) else {
                panic!("{file}: expected a certificate error");
            };
            let wanted = case[3..].join(" ");
            assert!(message.contains(&wanted), "{file}: {message}");
            continue;
        }
        let algorithm = match expected.as_str() {
            "sha224" => EndPointHash::Sha224,
            "sha256" => EndPointHash::Sha256,
            "sha384" => EndPointHash::Sha384,
            "sha512" => EndPointHash::Sha512,
            other => panic!("unknown hash {other}"),
        };
        assert_eq!(end_point_hash(&data).unwrap(), algorithm, "{file}");
        assert_eq!(
            hex(&tls_server_end_point(&data).unwrap()),
            case[3],
            "{file}"
        );
    }
}

#[test]
fn host_names_match_as_libpq_matches_them() {
    let cases = vectors("host ");
    assert!(cases.len() >= 15);
    for case in cases {
        let (file, host, verdict) = (&case[1], &case[2], &case[3]);
        let result = verify_host_name(&der(file), host);
        if verdict == "ok" {
            assert_eq!(result, Ok(()), "{file} {host}");
        } else {
            assert_eq!(
                result,
                Err(Error::Certificate(case[4].clone())),
                "{file} {host}"
            );
        }
    }
}

#[test]
fn an_empty_host_cannot_be_verified() {
    assert_eq!(
        verify_host_name(&der("sans.der"), ""),
        Err(Error::Certificate(
            "host name must be specified for a verified SSL connection".into()
        ))
    );
}

#[test]
fn truncated_certificates_are_errors_not_panics() {
    let data = der("sans.der");
    for end in 0..data.len() {
        assert!(matches!(
            tls_server_end_point(&data[..end]),
            Err(Error::Certificate(_))
        ));
        assert!(matches!(
            verify_host_name(&data[..end], "h"),
            Err(Error::Certificate(_))
        ));
    }
}
