//! The one place that writes to the terminal.
//!
//! Results (the created image and its digest, inspect output, config listings) go to stdout;
//! messages (info, warnings, errors) go to stderr, so that `cnbx ... -o json | jq` works.
//! Progress bars are drawn on stderr only when it is a terminal and neither `--quiet`,
//! `--verbose` nor `--no-color`/`NO_COLOR` is set; while bars are visible, messages are
//! printed through `MultiProgress::suspend` so the two never interleave.
//!
//! pack's global flags: `--force-color` colours messages even when stderr is not a terminal
//! (and wins over `--no-color`, as in pack); `--timestamps` starts every message on stderr
//! with the local time in pack's format (`2006/01/02 15:04:05.000000 `). Results on stdout
//! are never prefixed, so that they stay machine-readable.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use cnbx_oci::progress::{Level, Reporter, Task, TaskKind};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use owo_colors::OwoColorize;

/// How much to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

pub(crate) struct Printer {
    verbosity: Verbosity,
    color: bool,
    timestamps: bool,
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
    warned: Mutex<std::collections::HashSet<String>>,
}

impl Printer {
    pub(crate) fn new(verbosity: Verbosity, no_color: bool, force_color: bool, timestamps: bool) -> Self {
        let no_color = no_color || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let stderr_tty = std::io::stderr().is_terminal();
        let color = force_color || (!no_color && stderr_tty);
        let multi = (!no_color && stderr_tty && verbosity == Verbosity::Normal)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)));
        Self {
            verbosity,
            color,
            timestamps,
            multi,
            bars: Mutex::new(HashMap::new()),
            warned: Mutex::new(Default::default()),
        }
    }

    fn with_suspended<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.multi {
            Some(m) => m.suspend(f),
            None => f(),
        }
    }

    /// Writes a result line (or document) to stdout.
    pub(crate) fn result(&self, text: &str) {
        self.with_suspended(|| {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            if !text.ends_with('\n') {
                let _ = out.write_all(b"\n");
            }
            let _ = out.flush();
        });
    }

    /// Removes the progress bars still shown (when a command is cut short).
    pub(crate) fn clear_progress(&self) {
        if let Ok(mut bars) = self.bars.lock() {
            for (_, bar) in bars.drain() {
                bar.finish_and_clear();
            }
        }
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }

    /// Writes an error (with its rendered details) to stderr. Always shown.
    pub(crate) fn error(&self, text: &str) {
        let prefix = if self.color { "ERROR:".red().bold().to_string() } else { "ERROR:".to_owned() };
        self.line(&format!("{prefix} {text}"));
    }

    fn line(&self, text: &str) {
        let stamp = if self.timestamps { timestamp(chrono::Local::now()) } else { String::new() };
        self.with_suspended(|| {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{stamp}{}", text.trim_end_matches('\n'));
        });
    }

    /// Writes text to stderr as is (e.g. pack's `ERROR:` lines of an inspect section).
    pub(crate) fn raw_stderr(&self, text: &str) {
        self.line(text);
    }

    /// Whether `--verbose` was given.
    pub(crate) fn is_verbose(&self) -> bool {
        self.verbosity == Verbosity::Verbose
    }

    pub(crate) fn info(&self, text: &str) {
        self.message(Level::Info, text);
    }

    pub(crate) fn warn(&self, text: &str) {
        self.message(Level::Warn, text);
    }

    fn bar_style(kind: TaskKind, known_total: bool) -> ProgressStyle {
        let verb = match kind {
            TaskKind::Pull => "Pulling ",
            TaskKind::Push => "Pushing ",
            TaskKind::Build => "Building",
            TaskKind::Copy => "Copying ",
        };
        let template = if known_total {
            format!(
                "{verb} {{prefix:32!}} [{{bar:24}}] {{binary_bytes:>10}}/{{binary_total_bytes:<10}} {{binary_bytes_per_sec:>12}}"
            )
        } else {
            format!("{verb} {{prefix:32!}} {{spinner}} {{binary_bytes:>10}} {{binary_bytes_per_sec:>12}}")
        };
        ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> ")
    }
}

/// pack's `--timestamps` prefix: Go's layout `2006/01/02 15:04:05.000000` and a space.
fn timestamp<Tz: chrono::TimeZone>(time: chrono::DateTime<Tz>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    time.format("%Y/%m/%d %H:%M:%S%.6f ").to_string()
}

impl Reporter for Printer {
    fn message(&self, level: Level, text: &str) {
        match level {
            Level::Debug if self.verbosity < Verbosity::Verbose => {}
            Level::Info if self.verbosity < Verbosity::Normal => {}
            Level::Debug | Level::Info => self.line(text),
            Level::Warn => {
                // The same warning once per command (e.g. once, not once per target).
                let first = self.warned.lock().map(|mut w| w.insert(text.to_owned())).unwrap_or(true);
                if !first {
                    return;
                }
                let prefix = if self.color { "Warning:".yellow().bold().to_string() } else { "Warning:".to_owned() };
                self.line(&format!("{prefix} {text}"));
            }
        }
    }

    fn start(&self, task: &Task) {
        let Some(multi) = &self.multi else { return };
        let bar = match task.total {
            Some(total) => ProgressBar::new(total),
            None => ProgressBar::no_length(),
        };
        bar.set_style(Self::bar_style(task.kind, task.total.is_some()));
        bar.set_prefix(task.label.clone());
        bar.enable_steady_tick(Duration::from_millis(200));
        let bar = multi.add(bar);
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(task.id.clone(), bar);
        }
    }

    fn advance(&self, id: &str, bytes: u64) {
        if self.multi.is_none() {
            return;
        }
        if let Ok(bars) = self.bars.lock()
            && let Some(bar) = bars.get(id)
        {
            bar.inc(bytes);
        }
    }

    fn finish(&self, id: &str) {
        if self.multi.is_none() {
            return;
        }
        if let Ok(mut bars) = self.bars.lock()
            && let Some(bar) = bars.remove(id)
        {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_in_packs_format() {
        use chrono::TimeZone;
        let time = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).single().expect("valid")
            + chrono::Duration::microseconds(60_789);
        assert_eq!(timestamp(time), "2026/01/02 03:04:05.060789 ");
    }
}
