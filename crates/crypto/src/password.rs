//! Administrator passwords: policy and storage.
//!
//! Hashes are argon2id PHC strings with OWASP's recommended parameters
//! (19 MiB memory, 2 iterations, 1 lane). The policy demands 12 to 128
//! characters and refuses passwords that zxcvbn's shipped dictionaries
//! (common passwords, words, names, keyboard patterns — no network) rate as
//! guessable in fewer than 10^10 attempts, or that contain the account name.

use crate::{CryptoError, Result};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Fewest characters a password may have.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Most characters a password may have (argon2 takes any length; this bounds
/// the work an attacker can ask of the server).
pub const MAX_PASSWORD_CHARS: usize = 128;

/// OWASP Password Storage Cheat Sheet: argon2id, m = 19 MiB, t = 2, p = 1.
const M_COST_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

/// Why a password was refused. The text is safe to show the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejection {
    /// Shorter than [`MIN_PASSWORD_CHARS`].
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    /// Longer than [`MAX_PASSWORD_CHARS`].
    #[error("the password must have at most {MAX_PASSWORD_CHARS} characters")]
    TooLong,
    /// Found in, or derived from, common-password dictionaries.
    #[error("the password is too easy to guess: {0}")]
    TooCommon(String),
}

fn argon2() -> Result<Argon2<'static>> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None)
        .map_err(|e| CryptoError::InvalidKey(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Checks a new password against the policy; `context` holds words an
/// attacker would try first (account name, e-mail, product name).
pub fn check_password_policy(
    password: &str,
    context: &[&str],
) -> std::result::Result<(), PasswordRejection> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordRejection::TooShort);
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PasswordRejection::TooLong);
    }
    let mut inputs: Vec<&str> = context.to_vec();
    inputs.push("mamori");
    let entropy = zxcvbn::zxcvbn(password, &inputs);
    if entropy.score() < zxcvbn::Score::Four {
        let why = entropy
            .feedback()
            .and_then(zxcvbn::feedback::Feedback::warning)
            .map_or_else(
                || "add more unrelated words or characters".to_owned(),
                |w| w.to_string(),
            );
        return Err(PasswordRejection::TooCommon(why));
    }
    Ok(())
}

/// Hashes a password into an argon2id PHC string (random 16-byte salt).
pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::encode_b64(&crate::try_random_bytes(16)?)
        .map_err(|e| CryptoError::InvalidKey(format!("salt: {e}")))?;
    argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CryptoError::InvalidKey(format!("argon2: {e}")))
}

/// Checks a password against a stored PHC string. A malformed hash never
/// matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let Ok(a) = argon2() else {
        return false;
    };
    a.verify_password(password.as_bytes(), &hash).is_ok()
}

/// Does the same work as [`verify_password`] against a fixed hash, so a
/// login for an unknown account takes as long as one for a known account.
pub fn verify_password_dummy(password: &str) {
    static DUMMY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if let Some(phc) = DUMMY.get_or_init(|| hash_password("mamori-dummy-password").ok()) {
        let _ = verify_password(password, phc);
    }
}

/// True when a stored hash uses other parameters than the current ones and
/// should be replaced at the next successful login.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return true;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return true;
    };
    hash.algorithm.as_str() != "argon2id"
        || params.m_cost() != M_COST_KIB
        || params.t_cost() != T_COST
        || params.p_cost() != P_COST
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn policy_refuses_short_long_and_common_passwords() {
        assert_eq!(
            check_password_policy("short", &[]),
            Err(PasswordRejection::TooShort)
        );
        assert_eq!(
            check_password_policy(&"x".repeat(129), &[]),
            Err(PasswordRejection::TooLong)
        );
        for weak in [
            "password1234",
            "qwertyuiop123",
            "iloveyou2024!",
            "123456789012",
        ] {
            assert!(
                matches!(
                    check_password_policy(weak, &[]),
                    Err(PasswordRejection::TooCommon(_))
                ),
                "{weak} accepted"
            );
        }
        assert!(matches!(
            check_password_policy("taro.yamada.2024", &["taro.yamada"]),
            Err(PasswordRejection::TooCommon(_))
        ));
        assert!(check_password_policy("violet-harbor-58-quantum-tea", &["alice"]).is_ok());
    }

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let h1 = hash_password("violet-harbor-58-quantum-tea").unwrap();
        let h2 = hash_password("violet-harbor-58-quantum-tea").unwrap();
        assert!(h1.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h1}");
        assert_ne!(h1, h2, "salted");
        assert!(verify_password("violet-harbor-58-quantum-tea", &h1));
        assert!(!verify_password("violet-harbor-58-quantum-te", &h1));
        assert!(!verify_password("anything", "not a hash"));
        assert!(!needs_rehash(&h1));
        assert!(needs_rehash(
            "$argon2id$v=19$m=4096,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
        ));
        verify_password_dummy("whatever");
    }
}
