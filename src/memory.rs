//! Process and thread resource settings: the allocator, and thread priorities.

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

/// Makes the calling thread yield to the others when the CPU is contended (Linux: the nice
/// value is per thread). Best effort: if the system refuses, the thread keeps its priority.
pub fn lower_this_threads_priority(niceness: i32) {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority take no pointers; they only read and change the calling
    // thread's scheduling priority.
    unsafe {
        let thread = libc::gettid();
        if libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, niceness) != 0 {
            tracing::debug!("could not lower a thread's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = niceness;
}

/// Hands memory that has been freed back to the system. A large database read (libpq's result,
/// diesel's rows) leaves megabytes of free space scattered over glibc's per-thread arenas,
/// which would otherwise stay resident until the same thread happens to reuse it. Costs a walk
/// over the free lists (about a millisecond): call it after large transient work, not per request.
pub fn give_freed_memory_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages of glibc's own heaps; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}
