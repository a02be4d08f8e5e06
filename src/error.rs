//! One error type for the whole library, so that every failure reaches the CLI as a single line
//! naming the file and the problem, with an exit code that tells bad input from internal faults.

use std::path::{Path, PathBuf};

/// Everything that can go wrong in overlap-slam.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder given by the user is malformed, missing or inconsistent.
    #[error("{path}: {msg}")]
    Input { path: PathBuf, msg: String },
    /// The operating system refused a read or write.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A command-line value or option combination is invalid.
    #[error("{0}")]
    Usage(String),
    /// The rerun recording or viewer connection failed.
    #[error("rerun: {0}")]
    Viz(String),
    /// Work the command ran on others' behalf failed (a batch's jobs): the rest was done.
    #[error("{0}")]
    Failed(String),
}

/// Result with the library's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Bad content in `path`.
    pub fn input(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        Error::Input {
            path: path.as_ref().to_path_buf(),
            msg: msg.into(),
        }
    }

    /// An OS error while touching `path`.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// Process exit code: 2 for anything the user can fix in their input, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input { .. } | Error::Io { .. } | Error::Usage(_) => 2,
            Error::Viz(_) | Error::Failed(_) => 1,
        }
    }
}
