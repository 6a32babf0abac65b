//! `require_auth`: which authentication requests the client answers, with libpq's grammar
//! (a comma list of `password`, `md5`, `gss`, `sspi`, `scram-sha-256`, `oauth` and `none`,
//! either all plain or all `!`-negated) and libpq's error wording.

use crate::backend::auth_code;
use crate::error::{Error, Result};

/// One method of the list, and the authentication request codes it allows.
const METHODS: &[(&str, &[i32])] = &[
    ("password", &[auth_code::CLEARTEXT_PASSWORD]),
    ("md5", &[auth_code::MD5_PASSWORD]),
    ("gss", &[auth_code::GSS, auth_code::GSS_CONTINUE]),
    ("sspi", &[auth_code::SSPI, auth_code::GSS_CONTINUE]),
];

/// SASL mechanisms by their `require_auth` names; SASL requests are allowed while any is.
const SASL_METHODS: &[&str] = &["scram-sha-256", "oauth"];

const SASL_CODES: [i32; 3] = [
    auth_code::SASL,
    auth_code::SASL_CONTINUE,
    auth_code::SASL_FINAL,
];

fn bit(code: i32) -> u32 {
    1 << code
}

/// A parsed `require_auth` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequireAuth {
    /// The setting as given, for error messages.
    text: String,
    /// Allowed authentication request codes other than SASL's, as bits.
    codes: u32,
    /// Allowed SASL mechanisms (`require_auth` names).
    sasl: Vec<&'static str>,
    /// Whether the server must run an exchange (false: trust or cert may sign the client in).
    auth_required: bool,
}

impl RequireAuth {
    /// Parses the setting; the error is libpq's message.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut policy = RequireAuth {
            text: text.to_owned(),
            codes: 0,
            sasl: Vec::new(),
            auth_required: true,
        };
        let mut negated = false;
        for (i, part) in text.split(',').enumerate() {
            let method = match part.strip_prefix('!') {
                Some(rest) => {
                    if i == 0 {
                        // A negated list starts from everything and takes away.
                        negated = true;
                        policy.auth_required = false;
                        policy.codes = METHODS
                            .iter()
                            .flat_map(|(_, c)| c.iter())
                            .fold(0, |m, &c| m | bit(c));
                        policy.sasl = SASL_METHODS.to_vec();
                    } else if !negated {
                        return Err(format!(
                            "negative require_auth method \"{part}\" cannot be mixed with non-negative methods"
                        ));
                    }
                    rest
                }
                None if negated => {
                    return Err(format!(
                        "require_auth method \"{part}\" cannot be mixed with negative methods"
                    ))
                }
                None => part,
            };
            let duplicate =
                || format!("require_auth method \"{part}\" is specified more than once");
            if method == "none" {
                // `none` lets a server sign the client in without an exchange; `!none` forbids it.
                if policy.auth_required == negated {
                    return Err(duplicate());
                }
                policy.auth_required = negated;
            } else if let Some(&name) = SASL_METHODS.iter().find(|&&m| m == method) {
                let present = policy.sasl.contains(&name);
                if present != negated {
                    return Err(duplicate());
                }
                if negated {
                    policy.sasl.retain(|&m| m != name);
                } else {
                    policy.sasl.push(name);
                }
            } else if let Some((_, codes)) = METHODS.iter().find(|(m, _)| *m == method) {
                let bits = codes.iter().fold(0, |m, &c| m | bit(c));
                if negated {
                    if policy.codes & bits == 0 {
                        return Err(duplicate());
                    }
                    policy.codes &= !bits;
                } else {
                    if policy.codes & bits == bits {
                        return Err(duplicate());
                    }
                    policy.codes |= bits;
                }
            } else {
                return Err(format!("invalid require_auth value: \"{method}\""));
            }
        }
        Ok(policy)
    }

    fn fail(&self, reason: &str) -> Error {
        Error::AuthPolicy(format!(
            "authentication method requirement \"{}\" failed: {reason}",
            self.text
        ))
    }

    fn allows(&self, code: i32) -> bool {
        if SASL_CODES.contains(&code) {
            !self.sasl.is_empty()
        } else {
            (0..32).contains(&code) && self.codes & bit(code) != 0
        }
    }

    /// Checks an authentication request before it is answered. `finished` says whether the
    /// client has completed an exchange (sent its password, or verified the server's SCRAM
    /// signature); it matters for AuthenticationOk only.
    pub fn check_request(&self, code: i32, finished: bool) -> Result<()> {
        if code == auth_code::OK {
            if self.auth_required && !finished {
                return Err(self.fail("server did not complete authentication"));
            }
            return Ok(());
        }
        if self.allows(code) {
            return Ok(());
        }
        Err(self.fail(match code {
            auth_code::CLEARTEXT_PASSWORD => "server requested a cleartext password",
            auth_code::MD5_PASSWORD => "server requested a hashed password",
            auth_code::GSS | auth_code::GSS_CONTINUE => "server requested GSSAPI authentication",
            auth_code::SSPI => "server requested SSPI authentication",
            c if SASL_CODES.contains(&c) => "server requested SASL authentication",
            _ => "server requested an unknown authentication type",
        }))
    }

    /// Checks the SCRAM mechanism chosen from the server's SASL list (PostgreSQL 18 wording).
    pub fn check_scram(&self) -> Result<()> {
        if self.sasl.contains(&"scram-sha-256") {
            Ok(())
        } else {
            Err(self.fail("server requested SCRAM-SHA-256 authentication"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<()>) -> String {
        match result {
            Err(Error::AuthPolicy(m)) => m,
            other => panic!("expected a policy error, got {other:?}"),
        }
    }

    #[test]
    fn grammar_errors_use_libpq_wording() {
        for (text, error) in [
            (
                "scram-sha-256,!md5",
                "negative require_auth method \"!md5\" cannot be mixed with non-negative methods",
            ),
            (
                "!password,!none,scram-sha-256",
                "require_auth method \"scram-sha-256\" cannot be mixed with negative methods",
            ),
            (
                "password,md5,password",
                "require_auth method \"password\" is specified more than once",
            ),
            (
                "!password,!md5,!password",
                "require_auth method \"!password\" is specified more than once",
            ),
            (
                "none,md5,none",
                "require_auth method \"none\" is specified more than once",
            ),
            (
                "!none,!none",
                "require_auth method \"!none\" is specified more than once",
            ),
            (
                "scram-sha-256,scram-sha-256",
                "require_auth method \"scram-sha-256\" is specified more than once",
            ),
            ("abc", "invalid require_auth value: \"abc\""),
            ("!abc", "invalid require_auth value: \"abc\""),
            ("md5,", "invalid require_auth value: \"\""),
            (" md5", "invalid require_auth value: \" md5\""),
        ] {
            assert_eq!(RequireAuth::parse(text), Err(error.to_owned()), "{text}");
        }
    }

    #[test]
    fn positive_lists_allow_what_they_name_and_require_an_exchange() {
        let p = RequireAuth::parse("md5,scram-sha-256").unwrap();
        assert!(p.check_request(auth_code::MD5_PASSWORD, false).is_ok());
        assert!(p.check_request(auth_code::SASL, false).is_ok());
        assert!(p.check_scram().is_ok());
        assert_eq!(
            message(p.check_request(auth_code::CLEARTEXT_PASSWORD, false)),
            "authentication method requirement \"md5,scram-sha-256\" failed: server requested a cleartext password"
        );
        assert_eq!(
            message(p.check_request(auth_code::OK, false)),
            "authentication method requirement \"md5,scram-sha-256\" failed: server did not complete authentication"
        );
        assert!(p.check_request(auth_code::OK, true).is_ok());
        assert_eq!(
            message(RequireAuth::parse("md5").unwrap().check_request(auth_code::SASL, false)),
            "authentication method requirement \"md5\" failed: server requested SASL authentication"
        );
    }

    #[test]
    fn none_allows_only_no_exchange() {
        let p = RequireAuth::parse("none").unwrap();
        assert!(p.check_request(auth_code::OK, false).is_ok());
        assert_eq!(
            message(p.check_request(auth_code::SASL, false)),
            "authentication method requirement \"none\" failed: server requested SASL authentication"
        );
        let p = RequireAuth::parse("password,none").unwrap();
        assert!(p.check_request(auth_code::OK, false).is_ok());
        assert!(p
            .check_request(auth_code::CLEARTEXT_PASSWORD, false)
            .is_ok());
    }

    #[test]
    fn negated_lists_take_away() {
        let p = RequireAuth::parse("!password,!md5").unwrap();
        assert!(p.check_request(auth_code::OK, false).is_ok());
        assert!(p.check_request(auth_code::SASL, false).is_ok());
        assert!(p.check_scram().is_ok());
        assert!(p.check_request(auth_code::MD5_PASSWORD, false).is_err());
        // SASL stays allowed for OAUTHBEARER, so the refusal names the mechanism.
        let p = RequireAuth::parse("!scram-sha-256").unwrap();
        assert!(p.check_request(auth_code::SASL, false).is_ok());
        assert_eq!(
            message(p.check_scram()),
            "authentication method requirement \"!scram-sha-256\" failed: server requested SCRAM-SHA-256 authentication"
        );
        let p = RequireAuth::parse("!scram-sha-256,!oauth").unwrap();
        assert!(p.check_request(auth_code::SASL, false).is_err());
        let p = RequireAuth::parse("!none").unwrap();
        assert_eq!(
            message(p.check_request(auth_code::OK, false)),
            "authentication method requirement \"!none\" failed: server did not complete authentication"
        );
        assert!(p.check_request(auth_code::OK, true).is_ok());
        assert_eq!(
            message(p.check_request(99, false)),
            "authentication method requirement \"!none\" failed: server requested an unknown authentication type"
        );
    }
}
