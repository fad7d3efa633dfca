use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use socialops_proto::events::v1::{Alias, AliasKind};

/// Replaces raw alias values (open ids, union ids, phone numbers) with a keyed hash, so the same
/// person links across events while no raw identifier is stored or republished. A keyed hash rather
/// than a bare SHA-256 because phone numbers are few enough to enumerate.
#[derive(Clone)]
pub struct AliasHasher {
    key: SecretString,
}

impl std::fmt::Debug for AliasHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AliasHasher { key: [redacted] }")
    }
}

impl AliasHasher {
    pub fn new(key: SecretString) -> Self {
        Self { key }
    }

    /// Hex HMAC-SHA256 of `kind:platform:normalised value`.
    pub fn hash(&self, alias: &Alias) -> String {
        let kind = AliasKind::try_from(alias.kind).unwrap_or(AliasKind::Unspecified);
        let value = match kind {
            AliasKind::Phone => normalise_phone(&alias.value),
            _ => alias.value.trim().to_owned(),
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose_secret().as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(kind.as_str_name().as_bytes());
        mac.update(b":");
        mac.update(alias.platform.to_string().as_bytes());
        mac.update(b":");
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// Digits only, with a leading `+` kept: `+86 138-0013-8000` and `+8613800138000` are one phone.
fn normalise_phone(raw: &str) -> String {
    let trimmed = raw.trim();
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    if trimmed.starts_with('+') {
        format!("+{digits}")
    } else {
        digits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(value: &str) -> Alias {
        Alias {
            kind: AliasKind::Phone as i32,
            value: value.into(),
            ..Default::default()
        }
    }

    #[test]
    fn phone_formats_hash_alike_and_keys_matter() {
        let hasher = AliasHasher::new("k1".into());
        let a = hasher.hash(&phone("+86 138-0013-8000"));
        assert_eq!(a, hasher.hash(&phone("+8613800138000")));
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(
            a,
            AliasHasher::new("k2".into()).hash(&phone("+8613800138000"))
        );
    }

    #[test]
    fn kinds_do_not_collide() {
        let hasher = AliasHasher::new("k".into());
        let open_id = Alias {
            kind: AliasKind::OpenId as i32,
            value: "x1".into(),
            ..Default::default()
        };
        let union_id = Alias {
            kind: AliasKind::UnionId as i32,
            value: "x1".into(),
            ..Default::default()
        };
        assert_ne!(hasher.hash(&open_id), hasher.hash(&union_id));
    }
}
