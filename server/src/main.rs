//! Entry point of the `mesh-metrics` binary; see [`mesh_metrics::cli`].

/// mimalloc rather than glibc's allocator: with the caches holding answers for seconds
/// while each miss allocates and frees thousands of small blocks, glibc's heap fragments
/// and every miss costs more CPU the longer the server runs (edges misses at 1,000
/// workloads: 541 → 657 µs over 3,000 misses with glibc, 491–567 with mimalloc; see
/// BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    mesh_metrics::cli::main()
}
