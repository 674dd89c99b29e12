//! `BOTH-ENV-DUPLICATE`, `BOTH-ENV-SYNTAX`, `BUILD-ENV-PATH`/`RUN-ENV-PATH`, and the parsing of
//! `CNB_USER_ID`/`CNB_GROUP_ID` with pack's messages.
//!
//! PATH (open point 7, "valid" is not defined): a missing key is an error; `PATH=` is explicitly
//! empty and passes; otherwise each element must be absolute, and relative or empty elements
//! (an empty element means the current directory to POSIX shells) are a warning. Windows
//! separates with `;` and accepts `C:\…`, `C:/…`, `\\server\…` and `%VAR%…` elements.

use super::{PerRole, Subject, quoted_list};
use crate::facts::{Env, ImageFacts};
use crate::finding::Report;

const PATH_RULE: PerRole = PerRole { build: "BUILD-ENV-PATH", run: "RUN-ENV-PATH" };

/// Duplicate keys (the last one wins) and entries that are not `KEY=VALUE`.
pub(crate) fn syntax(s: &Subject<'_>, r: &mut Report) {
    if !s.env.duplicates.is_empty() {
        r.warn(
            "BOTH-ENV-DUPLICATE",
            format!(
                "Env sets {} more than once (the last value wins)",
                quoted_list(s.env.duplicates.iter().map(String::as_str))
            ),
            "keep one entry per variable in the image's Env",
        );
    }
    if !s.env.malformed.is_empty() {
        r.warn(
            "BOTH-ENV-SYNTAX",
            format!(
                "Env has entries that are not KEY=VALUE and are ignored: {}",
                quoted_list(s.env.malformed.iter().map(String::as_str))
            ),
            "write every Env entry as KEY=VALUE",
        );
    }
}

/// `PATH` is present and its elements are absolute.
pub(crate) fn path(s: &Subject<'_>, r: &mut Report) {
    let rule = PATH_RULE.id(s.role);
    let windows = s.is_windows();
    let Some(path) = s.env.get("PATH") else {
        let example = if windows {
            r"C:\Windows\system32;C:\Windows"
        } else {
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        };
        r.error(
            rule,
            "PATH is not set in Env (runtimes add a default PATH only when a container starts, not to the image config)",
            format!("add ENV PATH={example} to the {} (or PATH= to make it explicitly empty)", s.role),
        );
        return;
    };
    if path.is_empty() {
        return;
    }
    let elements: Vec<&str> = path.split(if windows { ';' } else { ':' }).collect();
    let bad: Vec<&str> = elements.iter().copied().filter(|e| !is_absolute(e, windows)).collect();
    if !bad.is_empty() {
        r.warn(
            rule,
            format!("PATH has elements that are not absolute directories: {}", quoted_list(bad.iter().copied())),
            "use only absolute directories in PATH, without empty elements",
        );
    }
}

fn is_absolute(element: &str, windows: bool) -> bool {
    if !windows {
        return element.starts_with('/');
    }
    let b = element.as_bytes();
    let drive = b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/');
    drive || element.starts_with(r"\\") || element.starts_with('%')
}

/// `CNB_USER_ID` or `CNB_GROUP_ID`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdVar {
    pub(crate) key: &'static str,
    /// `uid` or `gid`.
    pub(crate) what: &'static str,
}

/// `CNB_USER_ID`.
pub(crate) const CNB_USER_ID: IdVar = IdVar { key: "CNB_USER_ID", what: "uid" };
/// `CNB_GROUP_ID`.
pub(crate) const CNB_GROUP_ID: IdVar = IdVar { key: "CNB_GROUP_ID", what: "gid" };

/// Why a `CNB_*_ID` value is unusable: the message and the fix.
pub(crate) struct IdProblem {
    pub(crate) message: String,
    pub(crate) fix: String,
}

/// The value of `var` as a uid/gid, read as Go's `strconv.Atoi` reads it (an optional `+` or
/// `-`, decimal digits: `+1000` is 1000, as for pack and the lifecycle), with pack's messages
/// for a missing variable and for a value that is not an integer, and our own for an integer
/// that is not a valid id (negative, or larger than `u32`). `expected` (the id `User` resolves to, if known)
/// makes the fix concrete, unless it is root's 0, which would only trade one error for another.
pub(crate) fn cnb_id(facts: &ImageFacts, env: &Env, var: IdVar, expected: Option<u32>) -> Result<u32, IdProblem> {
    let example =
        expected.filter(|id| *id != 0).map_or_else(|| format!("<{} of the build user>", var.what), |v| v.to_string());
    let Some(value) = env.get(var.key) else {
        return Err(IdProblem {
            message: format!("image '{}' missing required env var '{}'", facts.name, var.key),
            fix: format!("add ENV {}={example} to the build image", var.key),
        });
    };
    // Go's strconv.Atoi, which pack and the lifecycle parse these with, accepts a sign.
    if is_go_int(value)
        && let Ok(id) = u32::try_from(value.parse::<i64>().unwrap_or(-1))
    {
        return Ok(id);
    }
    let fix = format!("set ENV {}={example} (a decimal {} from 0 to 4294967295) in the build image", var.key, var.what);
    let message = if is_go_int(value) {
        format!(
            "{} value '{value}' is not a valid {} (expected a decimal number from 0 to 4294967295)",
            var.key, var.what
        )
    } else {
        format!("failed to parse '{}', value '{value}' should be an integer", var.key)
    };
    Err(IdProblem { message, fix })
}

/// Whether Go's `strconv.Atoi` accepts `s`: an optional sign, decimal digits, within `i64`.
fn is_go_int(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && s.parse::<i64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_int_syntax() {
        assert!(is_go_int("-1"));
        assert!(is_go_int("+5"));
        assert!(is_go_int("99999999999"));
        assert!(!is_go_int("99999999999999999999"));
        assert!(!is_go_int(""));
        assert!(!is_go_int("1e3"));
        assert!(!is_go_int("-"));
    }

    #[test]
    fn windows_absolute_paths() {
        assert!(is_absolute(r"C:\Windows", true));
        assert!(is_absolute("c:/tools", true));
        assert!(is_absolute(r"\\server\share", true));
        assert!(is_absolute("%SystemRoot%", true));
        assert!(!is_absolute("bin", true));
        assert!(!is_absolute("C:", true));
        assert!(is_absolute("/usr/bin", false));
        assert!(!is_absolute("", false));
    }
}
