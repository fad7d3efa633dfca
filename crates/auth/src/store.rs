use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use figment::Figment;
use figment::providers::{Format as _, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::{AuthError, Principal, Role};

const TOKEN_PREFIX: &str = "so_";
const TOKEN_RANDOM_CHARS: usize = 43;
/// 64 symbols, so a random byte masked to 6 bits picks each one with equal probability.
const TOKEN_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// One accepted token, as configured: the token itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub id: String,
    pub tenant_id: String,
    pub role: Role,
    /// Lower-case hex of the SHA-256 of the bearer token.
    pub sha256: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub tokens: Vec<TokenEntry>,
    /// A TOML file of `[[tokens]]` entries, added to `tokens`.
    pub tokens_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TokensFile {
    tokens: Vec<TokenEntry>,
}

/// A token just issued. `token` is the only copy of the plaintext: hand it to the caller once.
#[derive(Debug)]
pub struct IssuedToken {
    pub id: String,
    pub token: SecretString,
    pub entry: TokenEntry,
}

/// The accepted tokens, keyed by the SHA-256 of the token. Cheap to clone; clones share the tokens.
///
/// Tokens are 256-bit random strings, so a fast unsalted hash is enough to make the stored form useless to
/// whoever reads it, and lookup by hash needs no constant-time comparison.
#[derive(Clone, Default)]
pub struct TokenStore(Arc<RwLock<HashMap<String, TokenEntry>>>);

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStore")
            .field("num_tokens", &self.len())
            .finish()
    }
}

impl TokenStore {
    /// Loads `config.tokens` and the entries of `config.tokens_file`; rejects malformed hashes and
    /// duplicate ids or hashes.
    pub fn from_config(config: &AuthConfig) -> Result<Self, AuthError> {
        let mut entries = config.tokens.clone();
        if let Some(path) = &config.tokens_file {
            entries.extend(read_tokens_file(path)?);
        }

        let mut by_hash: HashMap<String, TokenEntry> = HashMap::with_capacity(entries.len());
        let mut ids = HashSet::with_capacity(entries.len());
        for mut entry in entries {
            validate(&mut entry)?;
            if !ids.insert(entry.id.clone()) {
                return Err(AuthError::InvalidConfig(format!(
                    "token id {:?} is configured twice",
                    entry.id
                )));
            }
            if let Some(other) = by_hash.get(&entry.sha256) {
                return Err(AuthError::InvalidConfig(format!(
                    "tokens {:?} and {:?} have the same hash",
                    other.id, entry.id
                )));
            }
            by_hash.insert(entry.sha256.clone(), entry);
        }
        Ok(Self(Arc::new(RwLock::new(by_hash))))
    }

    /// Adds `entry`, replacing any entry with the same hash.
    pub fn insert(&self, mut entry: TokenEntry) {
        entry.sha256 = entry.sha256.trim().to_ascii_lowercase();
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(entry.sha256.clone(), entry);
    }

    /// The principal a bearer token stands for, if the token is known.
    pub fn verify(&self, bearer: &str) -> Option<Principal> {
        let hash = hash_token(bearer);
        let tokens = self.0.read().unwrap_or_else(PoisonError::into_inner);
        tokens.get(&hash).map(|entry| Principal {
            tenant_id: entry.tenant_id.clone(),
            role: entry.role,
            token_id: entry.id.clone(),
        })
    }

    /// Generates a token for `tenant_id` with `role`, accepts it from now on, and returns its only plaintext.
    pub fn issue(&self, tenant_id: &str, role: Role) -> IssuedToken {
        let (token, sha256) = generate_token();
        let id = format!("tok_{}", hex::encode(rand::random::<[u8; 8]>()));
        let entry = TokenEntry {
            id: id.clone(),
            tenant_id: tenant_id.to_owned(),
            role,
            sha256,
        };
        self.insert(entry.clone());
        tracing::info!(token_id = %id, tenant_id, %role, "issued token");
        IssuedToken {
            id,
            token: SecretString::from(token),
            entry,
        }
    }

    pub fn len(&self) -> usize {
        self.0.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A new random token (`so_` and 43 URL-safe characters, 258 random bits) and the hex SHA-256 to store.
pub fn generate_token() -> (String, String) {
    let mut random = [0_u8; TOKEN_RANDOM_CHARS];
    rand::fill(&mut random);
    let mut token = String::with_capacity(TOKEN_PREFIX.len() + TOKEN_RANDOM_CHARS);
    token.push_str(TOKEN_PREFIX);
    token.extend(
        random
            .iter()
            .map(|byte| char::from(TOKEN_ALPHABET[usize::from(byte & 0x3f)])),
    );
    let hash = hash_token(&token);
    (token, hash)
}

/// Lower-case hex of the SHA-256 of `token`.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn read_tokens_file(path: &std::path::Path) -> Result<Vec<TokenEntry>, AuthError> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        AuthError::InvalidConfig(format!(
            "cannot read tokens file {}: {error}",
            path.display()
        ))
    })?;
    let file: TokensFile = Figment::from(Toml::string(&text))
        .extract()
        .map_err(|error| {
            AuthError::InvalidConfig(format!("tokens file {}: {error}", path.display()))
        })?;
    Ok(file.tokens)
}

fn validate(entry: &mut TokenEntry) -> Result<(), AuthError> {
    entry.sha256 = entry.sha256.trim().to_ascii_lowercase();
    if entry.id.trim().is_empty() {
        return Err(AuthError::InvalidConfig(
            "a token has an empty id".to_owned(),
        ));
    }
    if entry.tenant_id.trim().is_empty() {
        return Err(AuthError::InvalidConfig(format!(
            "token {:?} has an empty tenant_id",
            entry.id
        )));
    }
    if entry.sha256.len() != 64 || !entry.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AuthError::InvalidConfig(format!(
            "token {:?}: sha256 must be 64 hex digits",
            entry.id
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use secrecy::ExposeSecret as _;

    use super::*;

    fn entry(id: &str, tenant_id: &str, role: Role, token: &str) -> TokenEntry {
        TokenEntry {
            id: id.to_owned(),
            tenant_id: tenant_id.to_owned(),
            role,
            sha256: hash_token(token),
        }
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn generated_tokens_are_prefixed_url_safe_and_distinct() {
        let (token, hash) = generate_token();
        assert_eq!(token.len(), 3 + 43);
        assert!(token.starts_with("so_"));
        assert!(
            token[3..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{token}"
        );
        assert_eq!(hash, hash_token(&token));
        assert_ne!(generate_token().0, token);
    }

    #[test]
    fn verify_accepts_known_tokens_only() {
        let store = TokenStore::from_config(&AuthConfig {
            tokens: vec![entry("ci", "acme", Role::Writer, "so_secret")],
            tokens_file: None,
        })
        .unwrap();
        assert_eq!(
            store.verify("so_secret"),
            Some(Principal {
                tenant_id: "acme".to_owned(),
                role: Role::Writer,
                token_id: "ci".to_owned(),
            })
        );
        assert_eq!(store.verify("so_secret "), None);
        assert_eq!(store.verify("so_other"), None);
        assert_eq!(store.verify(""), None);
    }

    #[test]
    fn upper_case_hashes_in_config_still_match() {
        let mut upper = entry("ops", "acme", Role::Admin, "so_upper");
        upper.sha256 = upper.sha256.to_ascii_uppercase();
        let store = TokenStore::from_config(&AuthConfig {
            tokens: vec![upper],
            tokens_file: None,
        })
        .unwrap();
        assert!(store.verify("so_upper").is_some());
    }

    #[test]
    fn issued_tokens_verify_and_never_print() {
        let store = TokenStore::default();
        let issued = store.issue("acme", Role::Reader);
        let principal = store.verify(issued.token.expose_secret()).unwrap();
        assert_eq!(principal.tenant_id, "acme");
        assert_eq!(principal.role, Role::Reader);
        assert_eq!(principal.token_id, issued.id);
        assert_eq!(
            issued.entry.sha256,
            hash_token(issued.token.expose_secret())
        );

        let printed = format!("{issued:?}");
        assert!(!printed.contains(issued.token.expose_secret()), "{printed}");
    }

    #[test]
    fn bad_entries_are_rejected() {
        let mut short = entry("a", "acme", Role::Reader, "x");
        short.sha256.truncate(10);
        let cases = [
            vec![short],
            vec![entry("", "acme", Role::Reader, "x")],
            vec![entry("a", " ", Role::Reader, "x")],
            vec![
                entry("a", "acme", Role::Reader, "x"),
                entry("a", "acme", Role::Reader, "y"),
            ],
            vec![
                entry("a", "acme", Role::Reader, "x"),
                entry("b", "globex", Role::Admin, "x"),
            ],
        ];
        for tokens in cases {
            let config = AuthConfig {
                tokens: tokens.clone(),
                tokens_file: None,
            };
            let result = TokenStore::from_config(&config);
            assert!(
                matches!(result, Err(AuthError::InvalidConfig(_))),
                "{tokens:?}"
            );
        }
    }

    #[test]
    fn tokens_file_entries_are_merged() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        write!(
            file,
            r#"
[[tokens]]
id = "dashboard"
tenant_id = "globex"
role = "reader"
sha256 = "{}"
"#,
            hash_token("so_from_file")
        )
        .unwrap();
        let store = TokenStore::from_config(&AuthConfig {
            tokens: vec![entry("ci", "acme", Role::Writer, "so_inline")],
            tokens_file: Some(file.path().to_owned()),
        })
        .unwrap();
        assert_eq!(store.len(), 2);
        let principal = store.verify("so_from_file").unwrap();
        assert_eq!(principal.tenant_id, "globex");
        assert_eq!(principal.role, Role::Reader);
        assert!(store.verify("so_inline").is_some());
    }

    #[test]
    fn tokens_file_problems_are_config_errors() {
        let missing = AuthConfig {
            tokens: Vec::new(),
            tokens_file: Some(PathBuf::from("/nonexistent/socialops-tokens.toml")),
        };
        assert!(matches!(
            TokenStore::from_config(&missing),
            Err(AuthError::InvalidConfig(_))
        ));

        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            file,
            "[[tokens]]\nid = \"x\"\ntenant_id = \"acme\"\nrole = \"owner\"\nsha256 = \"{}\"",
            hash_token("so_x")
        )
        .unwrap();
        let bad_role = AuthConfig {
            tokens: Vec::new(),
            tokens_file: Some(file.path().to_owned()),
        };
        let error = TokenStore::from_config(&bad_role).unwrap_err();
        assert!(error.to_string().contains("owner"), "{error}");
    }
}
