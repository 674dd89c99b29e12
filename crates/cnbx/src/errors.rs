//! Turning an error chain into what the user reads: `ERROR: outer: inner: cause`, followed by
//! any details a known error type carries (for builder.toml errors: the offending lines).
//!
//! A broken pipe (e.g. `cnbx builder inspect x | head -1`) is not an error worth reporting.

use crate::printer::Printer;

pub(crate) fn report(err: &anyhow::Error, printer: &Printer) {
    if err
        .chain()
        .any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
    {
        return;
    }
    printer.error(&format!("{err:#}"));
}
