//! Process-wide allocator settings.

/// Allocations of at least this size get their own mapping, returned to the system when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MAP_ON_THEIR_OWN_BYTES: libc::c_int = 4 * 1024 * 1024;

/// glibc keeps freed memory in per-thread arenas, and by default it raises its "big allocation"
/// threshold after each big free, so the 19 MiB argon2 buffers, or a swapped-out revocation set,
/// would stay resident after use. A fixed threshold makes such allocations separate mappings
/// that go back to the system as soon as they are freed.
pub fn return_big_allocations_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a setting of glibc's allocator; it is called once at start-up,
    // before any other thread exists, with a valid option and value.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MAP_ON_THEIR_OWN_BYTES);
    }
}
