use crate::domain::definition::DefinitionError;

socialops_service::service_error! {
    /// Everything that can go wrong in the campaign service. `CampaignError::code` is the one place
    /// that decides what a gRPC client sees.
    pub enum CampaignError {
        /// A definition document with problems, each naming its step and field.
        #[error("{0}")]
        Definition(#[from] DefinitionError) => tonic::Code::InvalidArgument,
        /// A lifecycle change or action the campaign's state does not allow (starting with open
        /// review findings, resuming a finished campaign …).
        #[error("{0}")]
        Precondition(String) => tonic::Code::FailedPrecondition,
        /// A budget or limit used up: a coupon pool's count or value budget, a user's limit.
        #[error("{0}")]
        Exhausted(String) => tonic::Code::ResourceExhausted,
        /// The store failed for a group of requests; retrying may succeed.
        #[error("{0}")]
        Unavailable(String) => tonic::Code::Unavailable,
    }
}
