//! Callers in other languages, with their own gRPC stacks and stubs generated from `proto/`:
//! Python (grpcio) and Node (@grpc/grpc-js), each against the real app.

#[path = "../common/mod.rs"]
mod common;

mod node;
mod python;

/// Runs a client program; what it printed (one JSON object), or why it failed.
fn run_client(
    what: &str,
    command: &mut std::process::Command,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let run = command.output()?;
    if !run.status.success() {
        return Err(format!(
            "{what} client failed: {}",
            String::from_utf8_lossy(&run.stderr)
        )
        .into());
    }
    Ok(serde_json::from_slice(&run.stdout)?)
}
