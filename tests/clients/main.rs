//! Callers in other languages, with their own gRPC stacks and stubs generated from `proto/`:
//! Python (grpcio) and Node (@grpc/grpc-js), each against the real app.

#[path = "../common/mod.rs"]
mod common;

mod node;
mod python;
