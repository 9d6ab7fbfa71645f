//! The `latch` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    latch::cli::run()
}
