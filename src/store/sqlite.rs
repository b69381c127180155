//! Process-wide SQLite settings, made before the first connection opens.

use std::ffi::{c_int, c_void};
use std::sync::Once;

use libsqlite3_sys as ffi;

/// Configures SQLite once per process, before any connection: it allocates from mimalloc, and
/// keeps no memory statistics.
///
/// - **mimalloc.** SQLite otherwise calls the C library's `malloc`. The driver copies every
///   value of every row it returns (an allocation and a free each), and a sort or a record of
///   over 1 KiB then makes glibc consolidate all those small freed chunks
///   (`malloc_consolidate`): a list page of 100 records spent a fifth of its CPU in glibc's
///   allocator. The service's own allocations already come from mimalloc.
/// - **No memory statistics.** With them on (SQLite's default), every allocation takes one
///   process-wide mutex to count bytes nobody reads here; with several connections busy at
///   once, the copies above queue on it (a list page spent a third of its time there).
pub fn configure() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let methods = ffi::sqlite3_mem_methods {
            xMalloc: Some(allocate),
            xFree: Some(free),
            xRealloc: Some(reallocate),
            xSize: Some(size_of),
            xRoundup: Some(round_up),
            xInit: Some(init),
            xShutdown: Some(shutdown),
            pAppData: std::ptr::null_mut(),
        };
        // SAFETY: sqlite3_config must run before SQLite initializes and while no other thread
        // uses SQLite: this runs once, before this process opens any connection (every one is
        // opened by `Store::connect_with`, after this). SQLITE_CONFIG_MALLOC takes a pointer to
        // the methods and copies them before it returns; SQLITE_CONFIG_MEMSTATUS takes an int.
        // If SQLite was initialized anyway, each answers SQLITE_MISUSE and nothing changes.
        let (malloc, memstatus) = unsafe {
            (
                ffi::sqlite3_config(
                    ffi::SQLITE_CONFIG_MALLOC,
                    &methods as *const ffi::sqlite3_mem_methods,
                ),
                ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, c_int::from(0u8)),
            )
        };
        if malloc != ffi::SQLITE_OK || memstatus != ffi::SQLITE_OK {
            tracing::debug!(
                malloc,
                memstatus,
                "SQLite was configured before; kept as it was"
            );
        }
    });
}

// SQLite asks for sizes as positive ints (never 0: sqlite3Malloc answers that itself) and
// passes only pointers these functions returned.

unsafe extern "C" fn allocate(size: c_int) -> *mut c_void {
    // SAFETY: mi_malloc accepts any size; it returns null when out of memory, as SQLite expects.
    unsafe { libmimalloc_sys::mi_malloc(usize::try_from(size).unwrap_or(0)) }
}

unsafe extern "C" fn free(pointer: *mut c_void) {
    // SAFETY: `pointer` came from mi_malloc or mi_realloc (above and below).
    unsafe { libmimalloc_sys::mi_free(pointer) }
}

unsafe extern "C" fn reallocate(pointer: *mut c_void, size: c_int) -> *mut c_void {
    // SAFETY: as `free`; on failure mi_realloc leaves `pointer` allocated and returns null.
    unsafe { libmimalloc_sys::mi_realloc(pointer, usize::try_from(size).unwrap_or(0)) }
}

unsafe extern "C" fn size_of(pointer: *mut c_void) -> c_int {
    // SAFETY: as `free`. SQLite may use every byte of the usable size it is told.
    let usable = unsafe { libmimalloc_sys::mi_usable_size(pointer) };
    c_int::try_from(usable).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn round_up(size: c_int) -> c_int {
    // SAFETY: mi_good_size only computes.
    let good = unsafe { libmimalloc_sys::mi_good_size(usize::try_from(size).unwrap_or(0)) };
    c_int::try_from(good).unwrap_or(size)
}

unsafe extern "C" fn init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn shutdown(_: *mut c_void) {}
