//! Memory reuse in processes that render one image after another.

/// Keeps freed memory in the process for the next image instead of giving it back to the kernel.
/// glibc's malloc serves blocks above a moving threshold (decoded images, their resized copies)
/// with fresh mmap'd pages, and trims the top of the heap when it is freed: every image then
/// faults all of its buffers in again, zeroed by the kernel — over the 16 shared photos about
/// 150 000 page faults and a tenth of the CPU. With a fixed 32 MiB mmap threshold (glibc's
/// largest) and no trimming, one image's buffers are reused by the next; the process keeps its
/// peak memory, which a warm Lambda is sized for anyway. No effect on other C libraries.
pub fn reuse_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets malloc parameters, under malloc's own lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
    }
}
