//! socialops-auth
