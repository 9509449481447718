// glibc's malloc is left with its default arenas (one per busy thread, up
// to 8 per core): capping them at two, as an earlier build did to save a
// couple of MB, made the HTTP workers queue on the arena locks, the
// hottest lock of a DIGEST round (bench/run: 10.1k -> 11.6k rounds/s,
// peak RSS 19 -> 21 MB with 100k accounts).
fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::exit(flexiapi::cli::run(args));
}
