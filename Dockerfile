# syntax=docker/dockerfile:1
#
# mesh-metrics container image.
#
#   docker build -t ghcr.io/mesh-metrics/mesh-metrics:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t ghcr.io/mesh-metrics/mesh-metrics:0.1.0 --push .
#
# Stage 1 compiles the release binary with the locked dependency versions (jemalloc, its
# allocator, is built from source with the image's C compiler); stage 2 is a
# distroless image with glibc and libgcc only (TLS is rustls, so no OpenSSL), running as
# the unprivileged user 65532 ("nonroot"). The Helm chart sets the same UID.

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS build
ARG TARGETARCH
WORKDIR /src
# The whole workspace is needed: Cargo resolves every member listed in Cargo.toml
# (including tests/meshsim and tests/e2e) even when building one package.
COPY . .
# BuildKit cache mounts keep the registry and the target directory between builds;
# the binary is copied out of the cached target directory. jemalloc (the server's
# allocator) fixes the largest page size it supports when it is built; arm64 kernels run
# with 4, 16 or 64 KiB pages, so on arm64 it is built for up to 64 KiB.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    if [ "$TARGETARCH" = arm64 ]; then export JEMALLOC_SYS_WITH_LG_PAGE=16; fi \
 && cargo build --release --locked -p mesh-metrics \
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
