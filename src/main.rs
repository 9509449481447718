fn main() {
    limit_malloc_arenas();
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::exit(flexiapi::cli::run(args));
}

/// glibc gives each busy thread its own malloc arena; with a worker pool and
/// SQLite page caches that multiplies the resident memory for no speed gain
/// on a small box. Two arenas keep the server's memory flat.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
