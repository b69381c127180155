//! The built-in sandbox: an emulator of the providers' HTTP APIs that the real connectors call
//! over HTTP, exactly as they call the providers.
