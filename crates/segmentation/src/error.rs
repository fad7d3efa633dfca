use crate::domain::ParseError;

socialops_service::service_error! {
    /// Everything that can go wrong in the segmentation service. `SegmentationError::code` is the
    /// one place that decides what a gRPC client sees.
    pub enum SegmentationError {
        /// A segment rule that does not parse or type-check, with its position.
        #[error("rule: {0}")]
        InvalidRule(#[from] ParseError) => tonic::Code::InvalidArgument,
    }
}
