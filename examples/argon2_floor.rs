//! The hash floor for benchmarks: Argon2id verifications per second with one thread per core
//! and latch's default parameters (m=19456 KiB, t=2, p=1), nothing else. `bench/compare.sh`
//! reports latch's sign-ins per second as a ratio of this.
//!
//! `cargo run --release --example argon2_floor [SECONDS] [THREADS]`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Params, Version};

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let threads: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, count) = (Arc::clone(&stop), Arc::clone(&count));
            std::thread::spawn(move || {
                let params = Params::new(19456, 2, 1, None).expect("parameters");
                let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                let mut out = [0u8; 32];
                while !stop.load(Ordering::Relaxed) {
                    argon
                        .hash_password_into(b"correct horse battery", b"somesaltsomesalt", &mut out)
                        .expect("hash");
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let n = count.load(Ordering::Relaxed);
    println!(
        "argon2id verifies/s: {:.1} (threads={threads}, n={n})",
        n as f64 / started.elapsed().as_secs_f64()
    );
}
