//! Entry point of the `mesh-metrics` binary; see [`mesh_metrics::cli`].

/// jemalloc rather than glibc's allocator. The caches hold answers for seconds while each
/// miss allocates and frees hundreds of small blocks; glibc's heap fragments under that
/// and a miss costs more CPU the longer the server runs (edges misses at 1,000 workloads:
/// 596 → 665–730 µs over 6,000 misses with glibc, 537–601 with jemalloc; namespace lists
/// afterwards 5.2–11.4 ms against 4.0–4.9, though about a tenth more with jemalloc on a
/// fresh server). See BENCHMARKS.md.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    mesh_metrics::cli::main()
}
