//! Shared HTTP transport for connectors.
