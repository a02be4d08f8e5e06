//! Process-wide allocator settings for the network's CPU work.

/// Tunes glibc's malloc for candle's CPU tensors: every op allocates a fresh output buffer of
/// up to tens of megabytes and frees its inputs, which glibc by default serves with `mmap` and
/// returns with `munmap`, zeroing fresh pages each time (OverlapNet training spent as much time
/// in the kernel as in arithmetic). Keeping such buffers on the heap took a 12-step training run
/// (`train --seeds 100..102 --val-seeds 900..901 --every 10 --val-every 20 --epochs 1
/// --epoch-pairs 80`) from 19 to 17 s of training and its kernel time from 21 to 8 s. It keeps
/// up to 1 GiB of freed memory mapped, so only the batch commands `train` and `eval-loops` call
/// it (a replay's resident memory tripled with it). Call once at start-up; without glibc it does nothing.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; called before any other thread runs.
    unsafe {
        // No mmap at all (the threshold cannot be raised past 32 MiB, and a batch's delta volume
        // is larger), and freed memory kept up to 1 GiB before it is given back.
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}
