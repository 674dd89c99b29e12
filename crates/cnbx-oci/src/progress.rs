//! Progress and message events. Library crates never print: they report through a
//! [`Reporter`], and the CLI's printer decides what reaches the terminal (bars on a TTY,
//! nothing when quiet, plain lines otherwise).

/// What a blob transfer or build step is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// Downloading a blob or file.
    Pull,
    /// Uploading a blob.
    Push,
    /// Building (tar + gzip + hash) a layer.
    Build,
    /// Copying a blob between local stores.
    Copy,
}

/// A unit of work shown as one progress bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Stable identifier within one command (e.g. a digest or a buildpack id@version).
    pub id: String,
    /// Short label shown to the user.
    pub label: String,
    /// Kind of work.
    pub kind: TaskKind,
    /// Total bytes, if known.
    pub total: Option<u64>,
}

/// Severity of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Shown only with `--verbose`.
    Debug,
    /// Normal progress messages.
    Info,
    /// Something the user should fix, but the command goes on.
    Warn,
}

/// Receives messages and progress from library code. Implementations must be cheap and
/// thread-safe: layers are built and transferred concurrently.
pub trait Reporter: Send + Sync {
    /// A message for the user.
    fn message(&self, level: Level, text: &str);
    /// A task started.
    fn start(&self, task: &Task);
    /// `bytes` more bytes of task `id` are done.
    fn advance(&self, id: &str, bytes: u64);
    /// Task `id` finished (successfully or not).
    fn finish(&self, id: &str);
}

/// A reporter that drops everything (library tests, `--quiet` internals).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullReporter;

impl Reporter for NullReporter {
    fn message(&self, _level: Level, _text: &str) {}
    fn start(&self, _task: &Task) {}
    fn advance(&self, _id: &str, _bytes: u64) {}
    fn finish(&self, _id: &str) {}
}

/// Convenience wrappers.
pub trait ReporterExt: Reporter {
    /// Reports a warning.
    fn warn(&self, text: &str) {
        self.message(Level::Warn, text);
    }
    /// Reports an info message.
    fn info(&self, text: &str) {
        self.message(Level::Info, text);
    }
    /// Reports a debug message.
    fn debug(&self, text: &str) {
        self.message(Level::Debug, text);
    }
}

impl<R: Reporter + ?Sized> ReporterExt for R {}
