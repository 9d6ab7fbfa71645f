//! Lower scheduling priority for background threads (Argon2 hashing, the SQLite purge), so
//! that on a busy machine they take the CPU that requests leave rather than the CPU requests
//! need.

/// The nice value of background threads (0 is normal priority, 19 the lowest): under
/// contention such a thread gets about a tenth of the share of a normal one.
pub const BACKGROUND_NICE: i32 = 10;

/// Sets the calling thread's nice value to [`BACKGROUND_NICE`]. On Linux the nice value is
/// per thread (`setpriority(PRIO_PROCESS, 0, …)` applies to the calling thread only), and
/// raising one's own needs no privilege. Elsewhere the thread keeps its priority.
pub fn lower_current_thread() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(None, BACKGROUND_NICE) {
        tracing::debug!(error = %e, "cannot lower the priority of a background thread");
    }
}
