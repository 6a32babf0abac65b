//! SCRAM-SHA-256 and SCRAM-SHA-256-PLUS client (RFC 5802, RFC 7677), built as libpq builds
//! its messages: an empty user name (the server uses the startup packet's), a 24-character
//! nonce, SASLprep with a raw-bytes fallback, and a constant-time server-signature check.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
pub const SCRAM_SHA_256_PLUS: &str = "SCRAM-SHA-256-PLUS";

/// What the client says about channel binding in its GS2 header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelBinding {
    /// `n,,`: no TLS, or binding disabled.
    Unsupported,
    /// `y,,`: TLS in use and we could bind, but the server did not offer -PLUS.
    NotOffered,
    /// `p=tls-server-end-point,,`: bind to this hash of the server certificate.
    TlsServerEndPoint(Vec<u8>),
}

impl ChannelBinding {
    fn gs2_header(&self) -> &'static str {
        match self {
            ChannelBinding::Unsupported => "n,,",
            ChannelBinding::NotOffered => "y,,",
            ChannelBinding::TlsServerEndPoint(_) => "p=tls-server-end-point,,",
        }
    }

    pub fn mechanism(&self) -> &'static str {
        match self {
            ChannelBinding::TlsServerEndPoint(_) => SCRAM_SHA_256_PLUS,
            _ => SCRAM_SHA_256,
        }
    }

    /// The `c=` attribute: base64 of the GS2 header plus the binding data.
    fn cbind_input(&self) -> String {
        let mut input = self.gs2_header().as_bytes().to_vec();
        if let ChannelBinding::TlsServerEndPoint(hash) = self {
            input.extend_from_slice(hash);
        }
        B64.encode(input)
    }
}

/// The keys both sides derive from the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub salted_password: [u8; 32],
    pub client_key: [u8; 32],
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `Hi()` of RFC 5802 (PBKDF2-HMAC-SHA-256) and the keys derived from it.
pub fn derive_keys(password: &[u8], salt: &[u8], iterations: u32) -> Keys {
    let mut salted_password = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut salted_password);
    let client_key = hmac(&salted_password, b"Client Key");
    let stored_key: [u8; 32] = Sha256::digest(client_key).into();
    let server_key = hmac(&salted_password, b"Server Key");
    Keys {
        salted_password,
        client_key,
        stored_key,
        server_key,
    }
}

/// SASLprep the password; if it is not valid UTF-8 or not allowed by SASLprep, libpq and the
/// server both use the raw bytes, so we do too.
pub fn normalize_password(password: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(password) {
        Ok(s) => match stringprep::saslprep(s) {
            Ok(p) => p.into_owned().into_bytes(),
            Err(_) => password.to_vec(),
        },
        Err(_) => password.to_vec(),
    }
}

/// Client side of one SCRAM exchange.
#[derive(Debug)]
pub struct ScramClient {
    password: Vec<u8>,
    binding: ChannelBinding,
    client_nonce: String,
    client_first_bare: String,
    state: State,
}

#[derive(Debug)]
enum State {
    Initial,
    FirstSent,
    FinalSent {
        server_key: [u8; 32],
        auth_message: String,
    },
    Done,
}

/// A random 18-byte nonce in base64 (24 characters), as libpq sends.
pub fn random_nonce() -> Result<String> {
    let mut raw = [0u8; 18];
    getrandom::fill(&mut raw).map_err(|e| Error::Auth(format!("could not generate nonce: {e}")))?;
    Ok(B64.encode(raw))
}

impl ScramClient {
    pub fn new(password: &[u8], binding: ChannelBinding) -> Result<Self> {
        Ok(Self::with_nonce(password, binding, random_nonce()?))
    }

    /// A client with a fixed nonce, for test vectors.
    pub fn with_nonce(password: &[u8], binding: ChannelBinding, nonce: String) -> Self {
        Self {
            password: normalize_password(password),
            binding,
            client_first_bare: String::new(),
            client_nonce: nonce,
            state: State::Initial,
        }
    }

    pub fn mechanism(&self) -> &'static str {
        self.binding.mechanism()
    }

    pub fn uses_channel_binding(&self) -> bool {
        matches!(self.binding, ChannelBinding::TlsServerEndPoint(_))
    }

    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The client-first-message, for SASLInitialResponse. `user` is normally empty (libpq).
    pub fn client_first(&mut self, user: &str) -> Vec<u8> {
        self.client_first_bare = format!("n={},r={}", escape_name(user), self.client_nonce);
        self.state = State::FirstSent;
        format!("{}{}", self.binding.gs2_header(), self.client_first_bare).into_bytes()
    }

    /// Consumes the server-first-message and returns the client-final-message. This runs
    /// PBKDF2 (milliseconds), so callers may release other locks around it.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>> {
        if !matches!(self.state, State::FirstSent) {
            return Err(Error::protocol("unexpected SASLContinue message"));
        }
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| Error::protocol("malformed SCRAM message (invalid UTF-8)"))?;
        let (nonce, salt, iterations) = parse_server_first(server_first)?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err(Error::Auth(
                "invalid SCRAM response (nonce mismatch)".into(),
            ));
        }
        let keys = derive_keys(&self.password, &salt, iterations);
        let without_proof = format!("c={},r={nonce}", self.binding.cbind_input());
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = hmac(&keys.stored_key, auth_message.as_bytes());
        let mut proof = keys.client_key;
        for (p, s) in proof.iter_mut().zip(client_signature) {
            *p ^= s;
        }
        let client_final = format!("{without_proof},p={}", B64.encode(proof)).into_bytes();
        self.state = State::FinalSent {
            server_key: keys.server_key,
            auth_message,
        };
        Ok(client_final)
    }

    /// Checks the server-final-message. The signature comparison runs in constant time.
    pub fn verify_server_final(&mut self, server_final: &[u8]) -> Result<()> {
        let State::FinalSent {
            server_key,
            auth_message,
        } = &self.state
        else {
            return Err(Error::protocol("unexpected SASLFinal message"));
        };
        let text = std::str::from_utf8(server_final)
            .map_err(|_| Error::protocol("malformed SCRAM message (invalid UTF-8)"))?;
        if let Some(err) = text.strip_prefix("e=") {
            return Err(Error::Auth(format!(
                "error received from server in SCRAM exchange: {err}"
            )));
        }
        let value = text
            .strip_prefix("v=")
            .ok_or_else(|| Error::protocol("malformed SCRAM message (attribute \"v\" expected)"))?;
        let value = value.split(',').next().unwrap_or_default();
        let received = B64
            .decode(value)
            .map_err(|_| Error::protocol("malformed SCRAM message (invalid server signature)"))?;
        // ServerSignature = HMAC(ServerKey, AuthMessage); `verify_slice` compares in constant
        // time, so a forged signature learns nothing from how long the check took.
        let mut mac =
            HmacSha256::new_from_slice(server_key).expect("HMAC takes keys of any length");
        mac.update(auth_message.as_bytes());
        mac.verify_slice(&received)
            .map_err(|_| Error::Auth("incorrect server signature".into()))?;
        self.state = State::Done;
        Ok(())
    }
}

/// RFC 5802 saslname escaping (`=` and `,`).
fn escape_name(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// The most PBKDF2 iterations a server may ask for: 2,441 times PostgreSQL's default of 4096,
/// about a second of one core here. libpq has no cap; without one, a server (or anyone in the
/// middle before TLS) can make a client spin for minutes.
pub const MAX_ITERATIONS: u32 = 10_000_000;

/// Parses `r=<nonce>,s=<salt>,i=<iterations>`; the attribute order is mandatory.
fn parse_server_first(msg: &str) -> Result<(&str, Vec<u8>, u32)> {
    // A server message that breaks the grammar is a protocol error, not a failed login.
    let malformed = |what: &str| Error::protocol(format!("malformed SCRAM message ({what})"));
    let mut parts = msg.split(',');
    let nonce = parts
        .next()
        .and_then(|p| p.strip_prefix("r="))
        .ok_or_else(|| malformed("attribute \"r\" expected"))?;
    if nonce.is_empty()
        || !nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
    {
        return Err(malformed("invalid nonce"));
    }
    let salt = parts
        .next()
        .and_then(|p| p.strip_prefix("s="))
        .ok_or_else(|| malformed("attribute \"s\" expected"))?;
    let salt = B64.decode(salt).map_err(|_| malformed("invalid salt"))?;
    let iterations = parts
        .next()
        .and_then(|p| p.strip_prefix("i="))
        .ok_or_else(|| malformed("attribute \"i\" expected"))?;
    let iterations: u32 = iterations
        .parse()
        .map_err(|_| malformed("invalid iteration count"))?;
    if iterations == 0 {
        return Err(malformed("invalid iteration count"));
    }
    if iterations > MAX_ITERATIONS {
        return Err(Error::Auth(format!(
            "the server asked for {iterations} SCRAM iterations, more than the {MAX_ITERATIONS} \
             pgoxide accepts (PostgreSQL's default is 4096): refused rather than spend \
             seconds of CPU on a value only a misconfigured or hostile server sends"
        )));
    }
    if parts.next().is_some() {
        return Err(malformed("garbage at end of server-first-message"));
    }
    Ok((nonce, salt, iterations))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";

    fn hex(b: &[u8]) -> String {
        use std::fmt::Write;
        b.iter().fold(String::new(), |mut s, x| {
            write!(s, "{x:02x}").unwrap();
            s
        })
    }

    #[test]
    fn rfc7677_vector() {
        let mut c = ScramClient::with_nonce(
            b"pencil",
            ChannelBinding::Unsupported,
            "rOprNGfwEbeRWgbNEkqO".into(),
        );
        assert_eq!(c.client_first("user"), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let fin = c.client_final(SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(
            String::from_utf8(fin).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(c.is_done());
    }

    #[test]
    fn rfc7677_intermediate_values() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let k = derive_keys(b"pencil", &salt, 4096);
        assert_eq!(
            hex(&k.salted_password),
            "c4a49510323ab4f952cac1fa99441939e78ea74d6be81ddf7096e87513dc615d"
        );
        assert_eq!(
            hex(&k.client_key),
            "a60fc923d67e8644a92d16b96eda5ef4656b0c725c484374be25535576996e8b"
        );
        assert_eq!(
            hex(&k.stored_key),
            "586e5df283e6dceb5c3e791d8b8528ec191e664045ce971792e2e6b5bb13e2a6"
        );
        assert_eq!(
            hex(&k.server_key),
            "c1f3cbc1c13a9d35a14c0990eed97629ea225863e566a4314ab99f3f00e5d9d5"
        );
    }

    fn libpq_variant(binding: ChannelBinding) -> (String, ScramClient) {
        let mut c = ScramClient::with_nonce(b"pencil", binding, "rOprNGfwEbeRWgbNEkqO".into());
        c.client_first("");
        let fin = String::from_utf8(c.client_final(SERVER_FIRST.as_bytes()).unwrap()).unwrap();
        (fin, c)
    }

    #[test]
    fn libpq_empty_user_variants() {
        let (fin, mut c) = libpq_variant(ChannelBinding::Unsupported);
        assert!(fin.starts_with("c=biws,"));
        assert!(fin.ends_with(",p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k="));
        c.verify_server_final(b"v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=")
            .unwrap();

        let (fin, mut c) = libpq_variant(ChannelBinding::NotOffered);
        assert!(fin.starts_with("c=eSws,"));
        assert!(fin.ends_with(",p=VpuC5DGQa5ro9tXE9MnKs69NH1nxnuregZZcclqIGfM="));
        c.verify_server_final(b"v=FOmOj9BpTGwvnzwBtWQjBaPmVxT9I8IeHBOhcIPu3us=")
            .unwrap();
    }

    #[test]
    fn channel_binding_header_carries_hash() {
        let (fin, c) = libpq_variant(ChannelBinding::TlsServerEndPoint(vec![0xAB; 32]));
        assert_eq!(c.mechanism(), SCRAM_SHA_256_PLUS);
        let mut want = b"p=tls-server-end-point,,".to_vec();
        want.extend_from_slice(&[0xAB; 32]);
        assert!(fin.starts_with(&format!("c={},", B64.encode(want))));
    }

    #[test]
    fn wrong_server_signature_rejected() {
        let (_, mut c) = libpq_variant(ChannelBinding::Unsupported);
        let err = c
            .verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap_err();
        assert_eq!(err, Error::Auth("incorrect server signature".into()));
        let (_, mut c) = libpq_variant(ChannelBinding::Unsupported);
        assert!(c.verify_server_final(b"v=AAAA").is_err());
        let (_, mut c) = libpq_variant(ChannelBinding::Unsupported);
        let err = c.verify_server_final(b"e=invalid-proof").unwrap_err();
        assert!(err.to_string().contains("invalid-proof"));
    }

    #[test]
    fn nonce_must_extend_ours() {
        let mut c = ScramClient::with_nonce(b"p", ChannelBinding::Unsupported, "abc".into());
        c.client_first("");
        let err = c.client_final(b"r=xyzdef,s=QUJD,i=4096").unwrap_err();
        assert_eq!(
            err,
            Error::Auth("invalid SCRAM response (nonce mismatch)".into())
        );
        let mut c = ScramClient::with_nonce(b"p", ChannelBinding::Unsupported, "abc".into());
        c.client_first("");
        assert!(
            c.client_final(b"r=abc,s=QUJD,i=4096").is_err(),
            "server must add to the nonce"
        );
    }

    #[test]
    fn malformed_server_first() {
        for bad in [
            "m=ext,r=abcd,s=QUJD,i=1",
            "r=abcd,i=1,s=QUJD",
            "r=abcd,s=QUJD,i=0",
            "r=abcd,s=QUJD,i=-1",
            "r=abcd,s=QUJD,i=10000001",
            "r=abcd,s=!!,i=1",
            "r=abcd,s=QUJD,i=1,x=y",
        ] {
            let mut c = ScramClient::with_nonce(b"p", ChannelBinding::Unsupported, "ab".into());
            c.client_first("");
            assert!(c.client_final(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn saslprep_with_raw_fallback() {
        // U+00AD (soft hyphen) is mapped to nothing by SASLprep.
        assert_eq!(normalize_password("pa\u{00AD}ss".as_bytes()), b"pass");
        // Not UTF-8: used as is.
        assert_eq!(normalize_password(&[0xff, 0x41]), vec![0xff, 0x41]);
        // Prohibited (a control character): raw bytes as well.
        assert_eq!(normalize_password(b"a\x07b"), b"a\x07b");
    }
}
