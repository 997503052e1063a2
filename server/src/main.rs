//! Entry point of the `mesh-metrics` binary; see [`mesh_metrics::cli`].

fn main() -> std::process::ExitCode {
    mesh_metrics::cli::main()
}
