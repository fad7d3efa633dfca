//! socialops-telemetry
