//! Process-wide SQLite settings, made before the first connection opens.

use std::sync::Once;

/// Turns off SQLite's memory statistics. With them on (its default), every allocation SQLite
/// makes takes one process-wide mutex to count bytes nobody reads here, and the driver copies
/// every value of every row it returns: with several connections busy at once, those copies
/// queue on that mutex (a list page of 100 records spent a third of its time there).
pub fn turn_off_memory_statistics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: SQLITE_CONFIG_MEMSTATUS takes one int. sqlite3_config must run before SQLite
        // initializes and while no other thread uses SQLite: this runs once, before this
        // process opens any connection (every one is opened by `Store::connect_with`, after
        // this). If SQLite was initialized anyway, it answers SQLITE_MISUSE and nothing changes.
        let code = unsafe {
            libsqlite3_sys::sqlite3_config(
                libsqlite3_sys::SQLITE_CONFIG_MEMSTATUS,
                std::ffi::c_int::from(0u8),
            )
        };
        if code != libsqlite3_sys::SQLITE_OK {
            tracing::debug!(code, "SQLite memory statistics stay on");
        }
    });
}
