# syntax=docker/dockerfile:1
#
# mesh-metrics container image.
#
#   docker build -t ghcr.io/mesh-metrics/mesh-metrics:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t ghcr.io/mesh-metrics/mesh-metrics:0.1.0 --push .
#
# Stage 1 compiles the release binary with the locked dependency versions; stage 2 is a
# distroless image with glibc and libgcc only (TLS is rustls, so no OpenSSL), running as
# the unprivileged user 65532 ("nonroot"). The Helm chart sets the same UID.

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# The whole workspace is needed: Cargo resolves every member listed in Cargo.toml
# (including tests/meshsim and tests/e2e) even when building one package.
COPY . .
# BuildKit cache mounts keep the registry and the target directory between builds;
# the binary is copied out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p mesh-metrics \
 && install -D -m 0755 target/release/mesh-metrics /out/mesh-metrics

FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="mesh-metrics" \
      org.opencontainers.image.description="SMI Traffic Metrics API (metrics.smi-spec.io/v1alpha1) for any service mesh, as a Kubernetes aggregated API server" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/mesh-metrics /mesh-metrics
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/mesh-metrics"]
