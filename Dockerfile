# Builds the release binary and ships it alone on a distroless base (non-root, no shell).
# protoc comes from the protoc-bin-vendored crate, so the builder needs only the Rust toolchain.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# Without the `sandbox` feature: the production image carries no provider emulator, and refuses
# CAPTURE_SANDBOX=on.
RUN cargo build --release --locked --no-default-features --bin capture-service

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/capture-service /usr/local/bin/capture-service
USER 65532:65532
EXPOSE 50051 8080
ENTRYPOINT ["/usr/local/bin/capture-service"]
CMD ["serve"]
