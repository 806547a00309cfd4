//! `pmem_errormsg()`: one message buffer per thread, at a fixed address for
//! the thread's lifetime, never NULL (empty until a call fails), as PMDK's.

use std::cell::UnsafeCell;
use std::ffi::c_char;

/// PMDK's buffer is about this size; longer messages are cut at a UTF-8
/// character boundary.
const MSG_LEN: usize = 1024;

thread_local! {
    // A const-initialised array without a destructor: its address is stable
    // and it stays readable until the thread is gone.
    static MSG: UnsafeCell<[u8; MSG_LEN]> = const { UnsafeCell::new([0; MSG_LEN]) };
}

/// Replaces the calling thread's message.
pub fn set(msg: &str) {
    let mut end = msg.len().min(MSG_LEN - 1);
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    MSG.with(|b| {
        // SAFETY: the buffer belongs to this thread; no reference into it is
        // alive (C callers hold only the pointer, and reading it while the
        // same thread writes is impossible).
        let buf = unsafe { &mut *b.get() };
        buf[..end].copy_from_slice(&msg.as_bytes()[..end]);
        buf[end] = 0;
    });
}

/// The calling thread's message, NUL-terminated.
pub fn ptr() -> *const c_char {
    MSG.with(|b| b.get().cast::<c_char>().cast_const())
}

/// Sets `errno` and the message of a failed call.
pub fn fail(e: &pmem_sys::Error) {
    set(&e.message);
    set_errno(e.errno);
}

/// Sets the calling thread's `errno`.
pub fn set_errno(errno: i32) {
    // SAFETY: __errno_location returns the calling thread's errno slot.
    unsafe { *libc::__errno_location() = errno };
}

/// The calling thread's `errno`.
pub fn errno() -> i32 {
    // SAFETY: as in `set_errno`.
    unsafe { *libc::__errno_location() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn read() -> String {
        // SAFETY: the buffer is always NUL-terminated.
        unsafe { CStr::from_ptr(ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn empty_then_set_and_stable_address() {
        std::thread::spawn(|| {
            let p = ptr();
            assert!(!p.is_null());
            assert_eq!(read(), "");
            set("pmem_map_file: path /x: open: No such file or directory");
            assert_eq!(ptr(), p, "the buffer does not move");
            assert_eq!(
                read(),
                "pmem_map_file: path /x: open: No such file or directory"
            );
        })
        .join()
        .unwrap();
    }

    #[test]
    fn per_thread() {
        set("main thread");
        std::thread::spawn(|| {
            assert_eq!(read(), "", "another thread's message is not visible");
            set("other");
        })
        .join()
        .unwrap();
        assert_eq!(read(), "main thread");
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MSG_LEN); // 2 bytes each
        set(&long);
        let got = read();
        assert!(got.len() < MSG_LEN && got.len() >= MSG_LEN - 3);
        assert!(got.chars().all(|c| c == 'é'));
    }
}
