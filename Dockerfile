# Builds the release binary and ships it alone on a distroless base (non-root, no shell).
# protoc comes from the protoc-bin-vendored crate, so the builder needs only the Rust toolchain.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The revision `--version` and `capture_build_info` report (.git is not copied):
# docker build --build-arg CAPTURE_GIT_REVISION=$(git rev-parse --short=12 HEAD) …
ARG CAPTURE_GIT_REVISION=unknown
ENV CAPTURE_GIT_REVISION=${CAPTURE_GIT_REVISION}
# Without the `sandbox` feature: the production image carries no provider emulator, and refuses
# CAPTURE_SANDBOX=on.
RUN cargo build --release --locked --no-default-features --bin capture-service

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/capture-service /usr/local/bin/capture-service
USER 65532:65532
# In a container the ports must be reachable from outside it (the binary's own defaults are
# loopback, for a developer's machine).
ENV CAPTURE_GRPC_ADDR=0.0.0.0:50051 CAPTURE_HTTP_ADDR=0.0.0.0:8080
EXPOSE 50051 8080
ENTRYPOINT ["/usr/local/bin/capture-service"]
CMD ["serve"]
