//! Safe file-system access for cnbx.
//!
//! Every file cnbx reads may come from someone else: a buildpack author, a buildpackage, an
//! OCI layout handed over by another tool. This crate is the one place where such files are
//! opened and where cnbx's own outputs are written:
//!
//! * [`open_regular`] opens a file **once**, without following a symbolic link in its last
//!   component and without blocking on a FIFO, and checks on the opened descriptor that it is
//!   a regular file. Whatever is read afterwards comes from that descriptor, so there is no
//!   window between a check and a read. [`read_bounded`] adds a size limit.
//! * [`AtomicFile`] is the one atomic, durable write helper: a temporary file named
//!   [`TMP_PREFIX`]`…` next to (or in a directory on the same file system as) the
//!   destination, created with the mode a user expects under their umask (or private, for
//!   files that hold secrets), synced, renamed into place, and the directory synced. Dropped
//!   without being committed, it removes its temporary file.
//! * [`FileLock`]: lock files: the exclusive lock that serialises read-modify-write updates,
//!   and the shared use lock of a directory several processes write into, whose first
//!   holder removes the temporary files a killed process left there
//!   ([`remove_temporaries`]).
//! * [`stop`]: stopping cleanly; every temporary file still being written is known, and
//!   writes are refused once the process is stopping (interrupted, or failing while work
//!   goes on on other threads).
//! * [`limits`]: the documented bounds on what cnbx reads, and their overrides.
//! * [`excerpt`]: how much of someone else's text cnbx quotes in a message ([`excerpt_line`]
//!   for a source line, [`excerpt_quoted`] for a parser's message); [`text_of`]: whether a
//!   file is text that may be quoted at all; [`error_chain`]: an error and its sources in one
//!   line; [`escape_controls`]: how the printer shows any text on a terminal.
//! * [`SafeDir`]: a directory walked through descriptors (`openat` with `O_NOFOLLOW`), so
//!   that replacing a directory or file with a symbolic link while cnbx walks or reads it
//!   cannot make it read anything outside.
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod atomic;
mod dir;
pub mod limits;
mod lock;
mod open;
pub mod stop;
mod text;

pub use atomic::{
    AtomicFile, RemovedTemporary, TMP_PREFIX, is_temporary_name, path_size, remove_path, remove_temporaries,
    remove_temporaries_in, write_atomic,
};
pub use dir::{DirEntryInfo, EntryType, Listed, OpenDir, SafeDir};
pub use lock::FileLock;
pub use open::{
    FsError, Named, OpenedFile, open_expected, open_regular, open_regular_following, read_bounded,
    read_bounded_following, read_bounded_named,
};
pub use text::{
    MAX_EXCERPT_CHARS, NotText, NotTextProblem, check_text, error_chain, escape_controls, excerpt, excerpt_line,
    excerpt_quoted, text_of,
};
