//! Who may call a socialops service, and for which tenant.
//!
//! A caller presents `authorization: Bearer <token>`. Each token is scoped to one tenant and one [`Role`];
//! services keep only the SHA-256 of each token ([`TokenStore`]), so a leaked configuration does not leak
//! credentials. [`AuthInterceptor`] checks the header on the server and leaves a [`Principal`] in the request
//! extensions; handlers read it with [`principal`] and check it with [`Principal::require`] and
//! [`Principal::tenant`]. [`BearerToken`] is the client side.

mod error;
mod interceptor;
mod principal;
mod store;

pub use error::AuthError;
pub use interceptor::{AuthInterceptor, BearerToken, principal};
pub use principal::{Principal, Role};
pub use store::{AuthConfig, IssuedToken, TokenEntry, TokenStore, generate_token, hash_token};
