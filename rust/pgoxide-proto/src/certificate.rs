//! What the client checks in the server's certificate, as libpq checks it: the
//! tls-server-end-point channel-binding data (RFC 5929 §4.1) and the `verify-full` host-name
//! match. Only the DER bytes come in; the TLS library has verified the chain already.

use std::net::IpAddr;

use pkcs1::RsaPssParams;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};
use x509_cert::der::asn1::ObjectIdentifier as Oid;
use x509_cert::der::Decode;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::Certificate;

use crate::error::{Error, Result};

/// The hash a certificate's signature algorithm names, for tls-server-end-point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndPointHash {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl EndPointHash {
    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            EndPointHash::Sha224 => Sha224::digest(data).to_vec(),
            EndPointHash::Sha256 => Sha256::digest(data).to_vec(),
            EndPointHash::Sha384 => Sha384::digest(data).to_vec(),
            EndPointHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

const fn oid(text: &str) -> Oid {
    Oid::new_unwrap(text)
}

const RSASSA_PSS: Oid = oid("1.2.840.113549.1.1.10");
const ED25519: Oid = oid("1.3.101.112");
const ED448: Oid = oid("1.3.101.113");
const SHA1: Oid = oid("1.3.14.3.2.26");

/// Signature algorithms with a single hash, and the hash PostgreSQL binds with: MD5 and SHA-1
/// are replaced by SHA-256 (RFC 5929 §4.1).
const SIGNATURE_HASHES: &[(Oid, EndPointHash)] = &[
    (oid("1.2.840.113549.1.1.4"), EndPointHash::Sha256), // md5WithRSAEncryption
    (oid("1.2.840.113549.1.1.5"), EndPointHash::Sha256), // sha1WithRSAEncryption
    (oid("1.2.840.113549.1.1.14"), EndPointHash::Sha224), // sha224WithRSAEncryption
    (oid("1.2.840.113549.1.1.11"), EndPointHash::Sha256), // sha256WithRSAEncryption
    (oid("1.2.840.113549.1.1.12"), EndPointHash::Sha384), // sha384WithRSAEncryption
    (oid("1.2.840.113549.1.1.13"), EndPointHash::Sha512), // sha512WithRSAEncryption
    (oid("1.2.840.10045.4.1"), EndPointHash::Sha256),    // ecdsa-with-SHA1
    (oid("1.2.840.10045.4.3.1"), EndPointHash::Sha224),  // ecdsa-with-SHA224
    (oid("1.2.840.10045.4.3.2"), EndPointHash::Sha256),  // ecdsa-with-SHA256
    (oid("1.2.840.10045.4.3.3"), EndPointHash::Sha384),  // ecdsa-with-SHA384
    (oid("1.2.840.10045.4.3.4"), EndPointHash::Sha512),  // ecdsa-with-SHA512
    (oid("1.2.840.10040.4.3"), EndPointHash::Sha256),    // dsa-with-sha1
    (oid("2.16.840.1.101.3.4.3.1"), EndPointHash::Sha224), // dsa-with-sha224
    (oid("2.16.840.1.101.3.4.3.2"), EndPointHash::Sha256), // dsa-with-sha256
];

/// Digest algorithms that may appear in RSASSA-PSS parameters.
const DIGESTS: &[(Oid, EndPointHash)] = &[
    (SHA1, EndPointHash::Sha256),
    (oid("2.16.840.1.101.3.4.2.4"), EndPointHash::Sha224),
    (oid("2.16.840.1.101.3.4.2.1"), EndPointHash::Sha256),
    (oid("2.16.840.1.101.3.4.2.2"), EndPointHash::Sha384),
    (oid("2.16.840.1.101.3.4.2.3"), EndPointHash::Sha512),
];

fn lookup(table: &[(Oid, EndPointHash)], oid: &Oid) -> Option<EndPointHash> {
    table.iter().find(|(o, _)| o == oid).map(|&(_, h)| h)
}

fn parse(der: &[u8]) -> Result<Certificate> {
    Certificate::from_der(der)
        .map_err(|e| Error::Certificate(format!("could not parse the server certificate: {e}")))
}

/// The hash tls-server-end-point uses for this certificate, from its signature algorithm
/// (for RSASSA-PSS, from the algorithm's parameters).
pub fn end_point_hash(der: &[u8]) -> Result<EndPointHash> {
    let cert = parse(der)?;
    let algorithm = &cert.signature_algorithm;
    if algorithm.oid == RSASSA_PSS {
        let params = match &algorithm.parameters {
            Some(any) => any.decode_as::<RsaPssParams<'_>>().map_err(|e| {
                Error::Certificate(format!(
                    "invalid RSASSA-PSS parameters in the server certificate: {e}"
                ))
            })?,
            None => {
                return Err(Error::Certificate(
                    "RSASSA-PSS server certificate without parameters".into(),
                ))
            }
        };
        return lookup(DIGESTS, &params.hash.oid).ok_or_else(|| undefined(&params.hash.oid));
    }
    if algorithm.oid == ED25519 || algorithm.oid == ED448 {
        let name = if algorithm.oid == ED25519 {
            "Ed25519"
        } else {
            "Ed448"
        };
        return Err(Error::Certificate(format!(
            "channel binding is not possible with this server certificate: it is signed with \
             {name}, which names no hash for tls-server-end-point (libpq fails the same way: \
             \"could not find digest for NID UNDEF\"); connect with channel_binding=disable or \
             give the server a certificate signed with RSA or ECDSA"
        )));
    }
    lookup(SIGNATURE_HASHES, &algorithm.oid).ok_or_else(|| undefined(&algorithm.oid))
}

fn undefined(oid: &Oid) -> Error {
    Error::Certificate(format!(
        "channel binding is not possible with this server certificate: its signature \
         algorithm {oid} names no hash pgoxide knows for tls-server-end-point"
    ))
}

/// The tls-server-end-point channel-binding data of the server certificate `der`: the
/// certificate hashed with [`end_point_hash`].
pub fn tls_server_end_point(der: &[u8]) -> Result<Vec<u8>> {
    Ok(end_point_hash(der)?.digest(der))
}

/// libpq's `verify-full` check of `host` against the certificate: subjectAltName entries
/// (dNSName always, iPAddress too), and the first Common Name only when no SAN of the host's
/// own kind (DNS name or IP address) is present. A DNS name may be `*.` followed by a suffix,
/// and the `*` stands for one label. Names compare case-insensitively.
pub fn verify_host_name(der: &[u8], host: &str) -> Result<()> {
    if host.is_empty() {
        return Err(Error::Certificate(
            "host name must be specified for a verified SSL connection".into(),
        ));
    }
    let cert = parse(der)?;
    let host_ip: Option<IpAddr> = host.parse().ok();
    let mut names: Vec<String> = Vec::new();
    let mut check_common_name = true;
    let san = cert.tbs_certificate.get::<SubjectAltName>().map_err(|e| {
        Error::Certificate(format!(
            "invalid subjectAltName in the server certificate: {e}"
        ))
    })?;
    if let Some((_, SubjectAltName(entries))) = san {
        for entry in entries {
            let (matched, name) = match entry {
                GeneralName::DnsName(dns) => {
                    if host_ip.is_none() {
                        check_common_name = false;
                    }
                    let name = text_name(dns.as_bytes())?;
                    (dns_name_matches(&name, host), name)
                }
                GeneralName::IpAddress(octets) => {
                    if host_ip.is_some() {
                        check_common_name = false;
                    }
                    let address = ip_from_octets(octets.as_bytes())?;
                    (host_ip == Some(address), address.to_string())
                }
                _ => continue,
            };
            if matched {
                return Ok(());
            }
            names.push(name);
        }
    }
    if check_common_name {
        if let Some(cn) = common_name(&cert)? {
            if dns_name_matches(&cn, host) {
                return Ok(());
            }
            names.push(cn);
        }
    }
    Err(Error::Certificate(match names.as_slice() {
        [] => "could not get server's host name from server certificate".into(),
        [only] => format!("server certificate for \"{only}\" does not match host name \"{host}\""),
        [first, rest @ ..] => format!(
            "server certificate for \"{first}\" (and {} other name{}) does not match host name \"{host}\"",
            rest.len(),
            if rest.len() == 1 { "" } else { "s" }
        ),
    }))
}

/// A name from the certificate as text; an embedded NUL is an attack (CVE-2009-4034).
fn text_name(bytes: &[u8]) -> Result<String> {
    if bytes.contains(&0) {
        return Err(Error::Certificate(
            "SSL certificate's name contains embedded null".into(),
        ));
    }
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

fn ip_from_octets(octets: &[u8]) -> Result<IpAddr> {
    match octets.len() {
        4 => Ok(IpAddr::from(<[u8; 4]>::try_from(octets).expect("4 bytes"))),
        16 => Ok(IpAddr::from(
            <[u8; 16]>::try_from(octets).expect("16 bytes"),
        )),
        n => Err(Error::Certificate(format!(
            "certificate contains IP address with invalid length {n}"
        ))),
    }
}

/// The subject's first Common Name.
fn common_name(cert: &Certificate) -> Result<Option<String>> {
    const COMMON_NAME: Oid = oid("2.5.4.3");
    for rdn in &cert.tbs_certificate.subject.0 {
        for attribute in rdn.0.iter() {
            if attribute.oid == COMMON_NAME {
                return text_name(attribute.value.value()).map(Some);
            }
        }
    }
    Ok(None)
}

/// An exact (case-insensitive) match, or libpq's wildcard rule: the pattern is `*.` plus a
/// suffix of the host, and the part of the host the `*` covers has no dot.
fn dns_name_matches(pattern: &str, host: &str) -> bool {
    if pattern.eq_ignore_ascii_case(host) {
        return true;
    }
    let Some(suffix) = pattern.strip_prefix('*') else {
        return false;
    };
    if !suffix.starts_with('.') || suffix.len() < 2 || host.len() < pattern.len() {
        return false;
    }
    let (label, rest) = host.split_at(host.len() - suffix.len());
    rest.eq_ignore_ascii_case(suffix) && !label.contains('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        assert!(dns_name_matches("*.example.com", "db.example.com"));
        assert!(dns_name_matches("*.Example.COM", "DB.example.com"));
        assert!(!dns_name_matches("*.example.com", "a.db.example.com"));
        assert!(!dns_name_matches("*.example.com", "example.com"));
        assert!(!dns_name_matches("db*.example.com", "db1.example.com"));
        assert!(!dns_name_matches("*", "localhost"));
        assert!(!dns_name_matches("*.", "a."));
        assert!(dns_name_matches("localhost", "LOCALHOST"));
        // The host must be at least as long as the pattern: `*` never matches nothing.
        assert!(!dns_name_matches("*.example.com", ".example.com"));
    }

    #[test]
    fn garbage_is_a_certificate_error() {
        for der in [&b""[..], b"\x30\x03\x02\x01\x00", b"not a certificate"] {
            assert!(matches!(
                tls_server_end_point(der),
                Err(Error::Certificate(_))
            ));
            assert!(matches!(
                verify_host_name(der, "h"),
                Err(Error::Certificate(_))
            ));
        }
    }

    #[test]
    fn ip_octets() {
        assert_eq!(
            ip_from_octets(&[127, 0, 0, 1]).unwrap().to_string(),
            "127.0.0.1"
        );
        assert!(ip_from_octets(&[1, 2, 3]).is_err());
    }
}
