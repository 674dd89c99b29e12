//! Turning an error chain into what the user reads: `ERROR: outer: inner: cause`, followed by
//! any details a known error type carries (for builder.toml errors: the offending lines).
//!
//! Output that cannot be written because its reader went away (e.g. `cnbx builder inspect x |
//! head -1`) is not an error worth reporting. Only an error that *is* a broken pipe counts: one
//! found deeper in the chain is the cause of something else (a registry connection that
//! dropped during an upload), and is reported like any other.

use crate::printer::Printer;

pub(crate) fn report(err: &anyhow::Error, printer: &Printer) {
    if is_closed_output(err) {
        return;
    }
    printer.error(&format!("{err:#}"));
}

/// Whether `err` is itself a broken pipe, not an error caused by one.
fn is_closed_output(err: &anyhow::Error) -> bool {
    err.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_broken_pipe_itself_is_quiet() {
        let pipe = || std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(is_closed_output(&anyhow::Error::new(pipe())));

        #[derive(Debug)]
        struct Upload(std::io::Error);
        impl std::fmt::Display for Upload {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("network error talking to cnbx.test for cnbx.test/builder")
            }
        }
        impl std::error::Error for Upload {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let upload = anyhow::Error::new(Upload(pipe()));
        assert!(!is_closed_output(&upload));
        assert!(!is_closed_output(&upload.context("publishing the builder")));
    }
}
