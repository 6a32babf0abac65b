//! PostgreSQL's MD5 password hashing: `"md5" + hex(md5(hex(md5(password + user)) + salt))`.

use md5::{Digest, Md5};
use std::fmt::Write;

fn hex_md5(parts: &[&[u8]]) -> String {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    let digest = h.finalize();
    let mut s = String::with_capacity(32);
    for b in &digest {
        write!(s, "{b:02x}").expect("writing to a String");
    }
    s
}

/// The PasswordMessage payload answering AuthenticationMD5Password.
pub fn password_message(user: &[u8], password: &[u8], salt: [u8; 4]) -> String {
    let inner = hex_md5(&[password, user]);
    format!("md5{}", hex_md5(&[inner.as_bytes(), &salt]))
}

#[cfg(test)]
mod tests {
    #[test]
    fn libpq_worked_example() {
        // libpq-parity.md 3.6: user postgres, password secret, salt 01 02 03 04.
        assert_eq!(
            super::password_message(b"postgres", b"secret", [1, 2, 3, 4]),
            "md5bb41a296aab6baccb36ff243a562abff"
        );
    }
}
