socialops_service::service_error! {
    /// Everything that can go wrong in the ingestion service. `IngestionError::code` is the one place
    /// that decides what a gRPC client sees.
    pub enum IngestionError {}
}
