//! socialops-grpc
