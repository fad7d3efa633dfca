use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::AuthError;

/// What a token may do. Ordered: each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Reader,
    Writer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "reader" => Ok(Role::Reader),
            "writer" => Ok(Role::Writer),
            "admin" => Ok(Role::Admin),
            _ => Err(AuthError::InvalidConfig(format!(
                "unknown role {s:?}; expected reader, writer or admin"
            ))),
        }
    }
}

/// The verified caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant_id: String,
    pub role: Role,
    /// Identifies the token (never the token itself); safe to log.
    pub token_id: String,
}

impl Principal {
    pub fn require(&self, role: Role) -> Result<(), AuthError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(AuthError::PermissionDenied(format!(
                "requires the {role} role"
            )))
        }
    }

    /// The tenant a request may act on: `requested`, or the token's own tenant when `requested` is empty.
    pub fn tenant<'a>(&'a self, requested: &'a str) -> Result<&'a str, AuthError> {
        if requested.is_empty() || requested == self.tenant_id {
            Ok(&self.tenant_id)
        } else {
            Err(AuthError::PermissionDenied(
                "token is scoped to another tenant".to_owned(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role) -> Principal {
        Principal {
            tenant_id: "acme".to_owned(),
            role,
            token_id: "tok_1".to_owned(),
        }
    }

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(Role::Reader < Role::Writer);
        assert!(Role::Writer < Role::Admin);
        let mut roles = vec![Role::Admin, Role::Reader, Role::Writer];
        roles.sort();
        assert_eq!(roles, [Role::Reader, Role::Writer, Role::Admin]);
    }

    #[test]
    fn roles_parse_and_print_in_lower_case() {
        for role in [Role::Reader, Role::Writer, Role::Admin] {
            assert_eq!(role.to_string().parse::<Role>().unwrap(), role);
        }
        assert_eq!(" Admin ".parse::<Role>().unwrap(), Role::Admin);
        assert!("owner".parse::<Role>().is_err());
    }

    #[test]
    fn require_accepts_the_role_and_weaker_ones() {
        let writer = principal(Role::Writer);
        assert!(writer.require(Role::Reader).is_ok());
        assert!(writer.require(Role::Writer).is_ok());
        let error = writer.require(Role::Admin).unwrap_err();
        assert!(matches!(&error, AuthError::PermissionDenied(m) if m == "requires the admin role"));
        assert_eq!(error.code(), tonic::Code::PermissionDenied);

        let reader = principal(Role::Reader);
        let error = reader.require(Role::Writer).unwrap_err();
        assert_eq!(error.to_string(), "requires the writer role");
    }

    #[test]
    fn tenant_defaults_to_the_tokens_own_and_refuses_others() {
        let admin = principal(Role::Admin);
        assert_eq!(admin.tenant("").unwrap(), "acme");
        assert_eq!(admin.tenant("acme").unwrap(), "acme");
        let error = admin.tenant("globex").unwrap_err();
        assert_eq!(error.to_string(), "token is scoped to another tenant");
        assert_eq!(
            tonic::Status::from(error).code(),
            tonic::Code::PermissionDenied
        );
    }
}
