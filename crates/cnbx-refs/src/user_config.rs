//! The user's `CNBX_HOME/config.toml` (pack's `[[run-images]]` format).
