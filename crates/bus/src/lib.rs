//! socialops-bus
