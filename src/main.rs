//! The `latch` binary: everything lives in the library.

/// mimalloc rather than the system allocator: each request allocates and frees a few dozen
/// small blocks (headers, extensions, the user's strings), which glibc's allocator makes a
/// measurable share of a request (bench/instructions.sh). The library leaves the choice to
/// the application that embeds it.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    latch::cli::run()
}
