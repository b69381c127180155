//! Compiles `proto/` into Rust (server and client) and writes the descriptor set that gRPC
//! reflection serves. `protoc` comes from the `protoc-bin-vendored` crate, so a fresh machine
//! needs nothing installed by hand.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let include = protoc_bin_vendored::include_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC from the environment.
    unsafe { env::set_var("PROTOC", protoc) };

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        // Undecodable requests are INVALID_ARGUMENT, not INTERNAL (src/api/codec.rs).
        .codec_path("crate::api::codec::StrictCodec")
        .file_descriptor_set_path(out_dir.join("capture_descriptor.bin"))
        .compile_protos(
            &[PathBuf::from("proto/capture/v1/capture_service.proto")],
            &[PathBuf::from("proto"), include],
        )?;
    println!("cargo:rerun-if-changed=proto");

    // The revision `capture_build_info` and `--version` report: the caller's
    // CAPTURE_GIT_REVISION (an image build without .git), else git's, else "unknown".
    let revision = env::var("CAPTURE_GIT_REVISION").ok().or_else(|| {
        let out = std::process::Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    });
    println!(
        "cargo:rustc-env=CAPTURE_GIT_REVISION={}",
        revision.unwrap_or_else(|| "unknown".to_owned())
    );
    println!("cargo:rerun-if-env-changed=CAPTURE_GIT_REVISION");
    for head in [".git/HEAD", ".git/refs/heads"] {
        if std::path::Path::new(head).exists() {
            println!("cargo:rerun-if-changed={head}");
        }
    }
    Ok(())
}
