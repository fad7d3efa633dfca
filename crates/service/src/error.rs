/// Declares a service's error enum: the variants every service shares, then the service's own, each
/// with the gRPC code a client sees; and `code()`, `on_unique()` and `From<_> for tonic::Status`,
/// the one place that decides what reaches a client. Internal and database error text never does
/// (see [`socialops_grpc::client_status`] and [`socialops_grpc::database_status`]).
///
/// ```ignore
/// socialops_service::service_error! {
///     /// Everything that can go wrong in the segmentation service.
///     pub enum SegmentationError {
///         /// A segment rule that does not parse or type-check, with its position.
///         #[error("rule: {0}")]
///         InvalidRule(#[from] ParseError) => tonic::Code::InvalidArgument,
///     }
/// }
/// ```
///
/// The enum's crate must depend on `thiserror`, `sqlx` and `tonic`.
#[macro_export]
macro_rules! service_error {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$($variant_meta:tt)*])*
                $variant:ident ( $($field:tt)* ) => $code:expr
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, ::thiserror::Error)]
        $vis enum $name {
            #[error("{0}")]
            InvalidArgument(String),
            #[error("{0}")]
            NotFound(String),
            #[error("{0}")]
            AlreadyExists(String),
            /// Another transaction changed what this one read; retrying reads the new state.
            #[error("{0}")]
            Conflict(String),
            #[error(transparent)]
            Auth(#[from] $crate::__private::AuthError),
            #[error("database: {0}")]
            Database(#[from] ::sqlx::Error),
            #[error("storage: {0}")]
            Storage(#[from] $crate::__private::StorageError),
            #[error("kafka: {0}")]
            Bus(#[from] $crate::__private::BusError),
            /// Stored data that does not decode.
            #[error("stored data cannot be read: {0}")]
            Corrupt(String),
            /// The service's own configuration is unusable; found at start-up.
            #[error("configuration: {0}")]
            Config(String),
            /// A failed internal step (an invariant broken, a worker task lost).
            #[error("{0}")]
            Runtime(String),
            /// A part of the running service failed (listener, server, background task).
            #[error(transparent)]
            Service(#[from] $crate::__private::ServiceError),
            $(
                $(#[$($variant_meta)*])*
                $variant($($field)*),
            )*
        }

        impl $name {
            /// The gRPC code a client sees for this error.
            pub fn code(&self) -> ::tonic::Code {
                match self {
                    Self::InvalidArgument(_) => ::tonic::Code::InvalidArgument,
                    Self::NotFound(_) => ::tonic::Code::NotFound,
                    Self::AlreadyExists(_) => ::tonic::Code::AlreadyExists,
                    Self::Conflict(_) => ::tonic::Code::Aborted,
                    Self::Auth(e) => e.code(),
                    Self::Database(e) => $crate::__private::database_code(e),
                    Self::Storage(_) | Self::Bus(_) => ::tonic::Code::Unavailable,
                    Self::Corrupt(_) | Self::Config(_) | Self::Runtime(_) | Self::Service(_) => {
                        ::tonic::Code::Internal
                    }
                    $( Self::$variant(..) => $code, )*
                }
            }

            /// The error as a consumer's handler reports it: invalid, unknown, duplicate or
            /// undecodable input fails for good (the consumer dead-letters the message that causes
            /// it); a database error is classified by its code; anything else is retried.
            pub fn into_handler_error(self) -> $crate::__private::HandlerError {
                match self {
                    Self::InvalidArgument(_)
                    | Self::NotFound(_)
                    | Self::AlreadyExists(_)
                    | Self::Corrupt(_) => $crate::__private::HandlerError::permanent(self),
                    other => $crate::__private::HandlerError::from(other),
                }
            }

            /// A unique-constraint violation becomes `AlreadyExists` with `message`; anything else
            /// stays a database error.
            #[allow(dead_code)]
            pub(crate) fn on_unique(error: ::sqlx::Error, message: impl FnOnce() -> String) -> Self {
                match &error {
                    ::sqlx::Error::Database(db) if db.is_unique_violation() => {
                        Self::AlreadyExists(message())
                    }
                    _ => Self::Database(error),
                }
            }
        }

        impl From<$name> for ::tonic::Status {
            fn from(error: $name) -> Self {
                match &error {
                    $name::Database(e) => $crate::__private::database_status(e),
                    _ => $crate::__private::client_status(error.code(), &error),
                }
            }
        }
    };
}

#[doc(hidden)]
pub mod __private {
    pub use socialops_auth::AuthError;
    pub use socialops_bus::{BusError, HandlerError};
    pub use socialops_grpc::{ServiceError, client_status, database_code, database_status};
    pub use socialops_storage::StorageError;
}
