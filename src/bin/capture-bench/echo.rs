//! The `echo` ceiling: a bare tonic server answering the gRPC health check, with nothing of the
//! service in it. Its throughput is what tonic and the machine allow a unary call.

use std::net::SocketAddr;
use std::process::ExitCode;

pub fn serve(addr: &str) -> ExitCode {
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        eprintln!("serve-echo: {addr:?} is not an address");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("serve-echo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(async move {
        let (_reporter, health) = tonic_health::server::health_reporter();
        tonic::transport::Server::builder()
            .add_service(health)
            .serve(addr)
            .await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("serve-echo: {e}");
            ExitCode::FAILURE
        }
    }
}
