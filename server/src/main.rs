//! Entry point of the `mesh-metrics` binary; see [`mesh_metrics::cli`].

/// jemalloc rather than glibc's allocator. The caches hold answers for seconds while each
/// miss allocates and frees hundreds of small blocks; glibc's heap fragments under that
/// and a miss costs more CPU the longer the server runs (edges misses at 1,000 workloads:
/// 579 → 764 µs over 1,500 misses with glibc, 541–618 with jemalloc; a 1,000-workload
/// namespace list 4.5–10.5 ms against 3.5–4.2). See BENCHMARKS.md.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    mesh_metrics::cli::main()
}
