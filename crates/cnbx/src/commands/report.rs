//! What `base-image check` and `builder create --dry-run` print: findings as one line each
//! for people, and the parts of their JSON documents they share. The JSON documents are
//! versioned ([`SCHEMA_VERSION`]) and documented in docs/json-output.md; a field is only ever
//! added within a version.

use cnbx_oci::spec::Platform;
use cnbx_validate::{Finding, Level, Role};
use serde::Serialize;

/// The `schemaVersion` of every JSON document cnbx prints for these commands.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// How JSON documents name a role.
pub(crate) fn role_name(role: Role) -> &'static str {
    match role {
        Role::Build => "build",
        Role::Run => "run",
        Role::Mirror => "mirror",
    }
}

/// A finding in a JSON document.
#[derive(Debug, Serialize)]
pub(crate) struct FindingJson {
    /// The rule id (docs/base-image-rules.md).
    rule: &'static str,
    /// `error` (a MUST), `warning` (a SHOULD or advisory), `info` (not verified, or a note).
    level: &'static str,
    /// `build`, `run` or `mirror`.
    role: &'static str,
    /// The image as the user wrote it.
    image: String,
    /// The platform it was checked for (`os/arch[/variant]`).
    platform: String,
    /// What is wrong.
    message: String,
    /// What to change.
    fix: String,
}

impl FindingJson {
    pub(crate) fn new(platform: &Platform, f: &Finding) -> Self {
        Self {
            rule: f.rule,
            level: f.level.as_str(),
            role: role_name(f.role),
            image: f.image.clone(),
            platform: platform.to_string(),
            message: f.message.clone(),
            fix: f.fix.clone(),
        }
    }
}

/// One finding on one line: level, rule id, the image and its platform, the message, the fix.
/// The message and the fix may quote an image's labels and environment: a line feed or tab
/// in them is shown escaped, so that a finding stays one line (the printer escapes every
/// other control character).
pub(crate) fn finding_line(platform: &Platform, f: &Finding) -> String {
    let one_line = |s: &str| cnbx_fs::escape_controls(s, false).into_owned();
    let mut line = format!(
        "{:<7} {} {} '{}' ({platform}): {}",
        f.level.as_str(),
        f.rule,
        f.role,
        one_line(&f.image),
        one_line(&f.message)
    );
    if !f.fix.is_empty() {
        line.push_str("; fix: ");
        line.push_str(&one_line(&f.fix));
    }
    line
}

/// How many findings of each level.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) errors: usize,
    pub(crate) warnings: usize,
    pub(crate) infos: usize,
}

impl Tally {
    pub(crate) fn of<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Self {
        let mut t = Self::default();
        for f in findings {
            match f.level {
                Level::Error => t.errors += 1,
                Level::Warning => t.warnings += 1,
                Level::Info => t.infos += 1,
            }
        }
        t
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = |n: usize, word: &str| if n == 1 { format!("{n} {word}") } else { format!("{n} {word}s") };
        write!(
            f,
            "{}, {}, {}",
            plural(self.errors, "error"),
            plural(self.warnings, "warning"),
            plural(self.infos, "info")
        )
    }
}

/// A document as pretty JSON.
pub(crate) fn to_json<T: Serialize>(value: &T) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finding_line_names_level_rule_image_platform_message_and_fix() {
        let f = Finding {
            rule: "RUN-USER-DIFFERENT",
            level: Level::Warning,
            role: Role::Run,
            image: "r".into(),
            message: "m".into(),
            fix: "f".into(),
        };
        let p = Platform::new("linux", "arm64", Some("v8"));
        assert_eq!(finding_line(&p, &f), "warning RUN-USER-DIFFERENT run image 'r' (linux/arm64/v8): m; fix: f");
        let json = serde_json::to_value(FindingJson::new(&p, &f)).unwrap();
        assert_eq!(json["platform"], "linux/arm64/v8");
        assert_eq!(json["role"], "run");
        assert_eq!(Tally::of([&f, &f]).to_string(), "0 errors, 2 warnings, 0 infos");
        let quoted = Finding { message: "label 'x' is 'a\nwarning FAKE'".into(), fix: "f\tg".into(), ..f };
        assert_eq!(
            finding_line(&p, &quoted),
            "warning RUN-USER-DIFFERENT run image 'r' (linux/arm64/v8): label 'x' is 'a\\u{a}warning FAKE'; fix: f\\u{9}g"
        );
    }
}
