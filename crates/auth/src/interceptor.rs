use tonic::metadata::{Ascii, MetadataValue};

use crate::{AuthError, Principal, TokenStore};

const AUTHORIZATION: &str = "authorization";

/// Server interceptor: turns `authorization: Bearer <token>` into a [`Principal`] in the request
/// extensions, or rejects the call as unauthenticated.
#[derive(Debug, Clone)]
pub struct AuthInterceptor {
    store: TokenStore,
}

impl AuthInterceptor {
    pub fn new(store: TokenStore) -> Self {
        Self { store }
    }
}

impl tonic::service::Interceptor for AuthInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let principal = bearer(request.metadata())
            .and_then(|token| self.store.verify(token))
            .ok_or_else(|| {
                tracing::debug!("rejected call without a valid bearer token");
                tonic::Status::from(AuthError::Unauthenticated)
            })?;
        tracing::trace!(token_id = %principal.token_id, tenant_id = %principal.tenant_id, "authenticated call");
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

/// The token from `authorization: Bearer <token>`; the scheme is case-insensitive (RFC 7235).
fn bearer(metadata: &tonic::metadata::MetadataMap) -> Option<&str> {
    let value = metadata.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The caller [`AuthInterceptor`] verified for this request.
pub fn principal<T>(request: &tonic::Request<T>) -> Result<&Principal, AuthError> {
    request
        .extensions()
        .get::<Principal>()
        .ok_or(AuthError::Unauthenticated)
}

/// Client interceptor that sends a bearer token with every call.
#[derive(Clone)]
pub struct BearerToken(MetadataValue<Ascii>);

impl BearerToken {
    pub fn new(token: &str) -> Result<Self, AuthError> {
        let mut value = MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| {
            AuthError::InvalidConfig(
                "bearer token has characters not allowed in metadata".to_owned(),
            )
        })?;
        // Keeps the token out of HTTP/2 header compression tables and `Debug` output.
        value.set_sensitive(true);
        Ok(Self(value))
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(..)")
    }
}

impl tonic::service::Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert(AUTHORIZATION, self.0.clone());
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use tonic::service::Interceptor as _;

    use super::*;
    use crate::{AuthConfig, Role, TokenEntry, hash_token};

    fn interceptor() -> AuthInterceptor {
        let store = TokenStore::from_config(&AuthConfig {
            tokens: vec![TokenEntry {
                id: "ci".to_owned(),
                tenant_id: "acme".to_owned(),
                role: Role::Writer,
                sha256: hash_token("so_good"),
            }],
            tokens_file: None,
        })
        .unwrap();
        AuthInterceptor::new(store)
    }

    fn request_with(authorization: Option<&str>) -> tonic::Request<()> {
        let mut request = tonic::Request::new(());
        if let Some(value) = authorization {
            request
                .metadata_mut()
                .insert(AUTHORIZATION, value.parse().unwrap());
        }
        request
    }

    #[test]
    fn a_known_token_leaves_its_principal_on_the_request() {
        for header in ["Bearer so_good", "bearer so_good", "BEARER  so_good "] {
            let request = interceptor().call(request_with(Some(header))).unwrap();
            let principal = principal(&request).unwrap();
            assert_eq!(principal.tenant_id, "acme", "{header}");
            assert_eq!(principal.role, Role::Writer);
            assert_eq!(principal.token_id, "ci");
        }
    }

    #[test]
    fn missing_malformed_or_unknown_tokens_are_unauthenticated() {
        let cases = [
            None,
            Some("so_good"),
            Some("Basic so_good"),
            Some("Bearer "),
            Some("Bearer so_bad"),
        ];
        for header in cases {
            let status = interceptor().call(request_with(header)).unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{header:?}");
            assert_eq!(status.message(), "missing or invalid bearer token");
        }
    }

    #[test]
    fn principal_is_unauthenticated_without_the_interceptor() {
        let error = principal(&request_with(Some("Bearer so_good"))).unwrap_err();
        assert!(matches!(error, AuthError::Unauthenticated));
        assert_eq!(
            tonic::Status::from(error).code(),
            tonic::Code::Unauthenticated
        );
    }

    #[test]
    fn bearer_token_round_trips_through_the_server_interceptor() {
        let mut client = BearerToken::new("so_good").unwrap();
        let request = client.call(tonic::Request::new(())).unwrap();
        assert!(
            request
                .metadata()
                .get(AUTHORIZATION)
                .unwrap()
                .is_sensitive()
        );
        assert!(!format!("{client:?}").contains("so_good"));
        let request = interceptor().call(request).unwrap();
        assert_eq!(principal(&request).unwrap().token_id, "ci");
    }

    #[test]
    fn bearer_token_rejects_header_breaking_characters() {
        assert!(matches!(
            BearerToken::new("so_bad\r\nx-injected: 1"),
            Err(AuthError::InvalidConfig(_))
        ));
    }
}
