//! The bounds on what cnbx reads. Every input may be hostile, so nothing is read without a
//! limit; each limit is large enough for every real input seen, and the ones that real
//! inputs could reach can be raised with an environment variable. docs/security.md lists
//! them.

/// One mebibyte.
pub const MIB: u64 = 1024 * 1024;

/// Image manifests, image indexes and image configs (registries refuse manifests larger
/// than 4 MiB).
pub const MAX_DOCUMENT: u64 = 4 * MIB;

/// `buildpack.toml`, `extension.toml`, `lifecycle.toml`, `package.toml`, and the
/// `oci-layout` and `index.json` of a buildpackage.
pub const MAX_DESCRIPTOR: u64 = MIB;

/// The extended headers of one tar entry (PAX records, GNU long names and link targets),
/// which a tar reader holds in memory whole.
pub const MAX_TAR_HEADER: u64 = MIB;

/// `builder.toml` and the user's `config.toml`.
pub const MAX_CONFIG_FILE: u64 = 10 * MIB;

/// Environment variable overriding [`max_unpacked_size`].
pub const MAX_UNPACKED_SIZE_ENV: &str = "CNBX_MAX_UNPACKED_SIZE";

/// Default of [`max_unpacked_size`]: 16 GiB.
pub const DEFAULT_MAX_UNPACKED_SIZE: u64 = 16 * 1024 * MIB;

/// Environment variable overriding [`max_archive_entries`].
pub const MAX_ARCHIVE_ENTRIES_ENV: &str = "CNBX_MAX_ARCHIVE_ENTRIES";

/// Default of [`max_archive_entries`].
pub const DEFAULT_MAX_ARCHIVE_ENTRIES: u64 = 1_000_000;

/// The most bytes cnbx unpacks from one archive or layer (the sum of its entries' sizes
/// after decompression): [`DEFAULT_MAX_UNPACKED_SIZE`], or `CNBX_MAX_UNPACKED_SIZE` (a
/// number of bytes, optionally with a `K`, `M`, `G` or `T` suffix, binary multiples, `B`
/// and `iB` accepted: `32G`, `32GiB`). An unreadable value is ignored.
pub fn max_unpacked_size() -> u64 {
    env_size(MAX_UNPACKED_SIZE_ENV).unwrap_or(DEFAULT_MAX_UNPACKED_SIZE)
}

/// The most entries cnbx reads from one archive or layer: [`DEFAULT_MAX_ARCHIVE_ENTRIES`],
/// or `CNBX_MAX_ARCHIVE_ENTRIES`.
pub fn max_archive_entries() -> u64 {
    std::env::var(MAX_ARCHIVE_ENTRIES_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_ARCHIVE_ENTRIES)
}

fn env_size(name: &str) -> Option<u64> {
    parse_size(&std::env::var(name).ok()?)
}

/// Parses `123`, `16G`, `16GiB`, `512MB` (binary multiples).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(digits);
    let n: u64 = n.parse().ok()?;
    let unit = unit.trim().to_ascii_uppercase();
    let unit = unit.strip_suffix("IB").or_else(|| unit.strip_suffix('B')).unwrap_or(&unit);
    let shift = match unit {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift).filter(|v| *v > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("16G"), Some(16 << 30));
        assert_eq!(parse_size("16GiB"), Some(16 << 30));
        assert_eq!(parse_size("512 MB"), Some(512 << 20));
        assert_eq!(parse_size("1k"), Some(1024));
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("1Q"), None);
        assert_eq!(parse_size("99999999999999999999"), None);
    }
}
