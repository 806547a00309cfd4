//! Errors: an errno plus a message that names the call, the argument and
//! the reason, as libc users expect.

use std::fmt;

/// A failed call: the errno a C caller sees and a message for humans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// The `errno` value (`libc::EINVAL`, ...).
    pub errno: i32,
    /// "call: argument: reason".
    pub message: String,
}

impl Error {
    /// An error of `call` about `argument`, for `reason`.
    pub fn new(
        errno: i32,
        call: &str,
        argument: impl fmt::Display,
        reason: impl fmt::Display,
    ) -> Self {
        Error {
            errno,
            message: format!("{call}: {argument}: {reason}"),
        }
    }

    /// An error from the operating system: the reason is its strerror text.
    pub fn os(errno: i32, call: &str, argument: impl fmt::Display, doing: &str) -> Self {
        // The strerror text, without the " (os error N)" Rust appends.
        let text = std::io::Error::from_raw_os_error(errno).to_string();
        let text = text.split(" (os error").next().unwrap_or(&text);
        Error::new(errno, call, argument, format_args!("{doing}: {text}"))
    }

    /// `errno` of the calling thread's last failed system call.
    pub fn last_errno() -> i32 {
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        let kind = std::io::Error::from_raw_os_error(e.errno).kind();
        std::io::Error::new(kind, e.message)
    }
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
