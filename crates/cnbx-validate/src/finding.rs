//! The validator's output: one [`Finding`] per broken (or undecidable) rule and image.

use std::fmt;

/// How serious a finding is.
///
/// The spec's MUST maps to [`Level::Error`] and SHOULD to [`Level::Warning`]; advisory checks
/// (no spec rule behind them) are warnings, and rules that could not be decided are
/// [`Level::Info`] ("not verified"), never a silent pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// A MUST of the spec (or a check pack itself enforces) is broken: the builder must not be created.
    Error,
    /// A SHOULD of the spec, or an advisory check, is broken.
    Warning,
    /// A rule could not be decided with the inputs given (for example a user name in
    /// config-only mode), or a note that needs no action.
    Info,
}

impl Level {
    /// Its name: `error`, `warning` or `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "info",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The part an image plays in the builder; it prefixes every message and is the first sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// The build image (`[build].image`).
    Build,
    /// A run image (`[[run.images]].image`).
    Run,
    /// A run image mirror (`[[run.images]].mirrors`).
    Mirror,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Build => "build image",
            Role::Run => "run image",
            Role::Mirror => "run image mirror",
        })
    }
}

/// One rule result for one image.
///
/// `Display` renders `<role> '<image>': <message> [<rule>]`, for example
/// `build image 'x': CNB_USER_ID (1001) does not match the uid of User 'cnb' (1000) [BUILD-ENV-CNB_USER_ID]`.
/// The level is not part of the text (the CLI prefixes `ERROR:`/`Warning:`), and the fix is
/// kept apart in [`Finding::fix`] so the printer can put it on its own line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Finding {
    /// The rule id (`BUILD-USER-NONROOT`, `PAIR-TARGET-MATCH`, …; see the crate docs).
    pub rule: &'static str,
    /// How serious it is.
    pub level: Level,
    /// Which kind of image the finding is about.
    pub role: Role,
    /// The image as the user wrote it (builder.toml or command line).
    pub image: String,
    /// What is wrong, lower-case, without a trailing period and without the image name prefix.
    pub message: String,
    /// What to change so that the rule passes; never empty.
    pub fix: String,
}

impl Finding {
    /// The suggested fix (also available as the `fix` field).
    pub fn fix(&self) -> &str {
        &self.fix
    }

    /// The key [`sort_findings`] orders by: role, image, rule id, message (then level and fix,
    /// so that the order is total).
    fn sort_key(&self) -> (Role, &str, &str, &str, Level, &str) {
        (self.role, &self.image, self.rule, &self.message, self.level, &self.fix)
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} '{}': {} [{}]", self.role, self.image, self.message, self.rule)
    }
}

/// Sorts findings deterministically: by image role (build, run, mirror), then image name (so
/// that the findings of one run image stay together), then rule id, then message.
///
/// Every `check_*` function already returns sorted findings; call this after concatenating
/// the results of several calls.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
}

/// Collects the findings of one image (or one image pair) while the rules run.
#[derive(Debug)]
pub(crate) struct Report {
    role: Role,
    image: String,
    findings: Vec<Finding>,
}

impl Report {
    /// An empty report about `image` in `role`.
    pub(crate) fn new(role: Role, image: &str) -> Self {
        Self { role, image: image.to_owned(), findings: Vec::new() }
    }

    /// Adds a finding.
    pub(crate) fn push(
        &mut self,
        rule: &'static str,
        level: Level,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        // A finding the table does not allow (an unknown rule, another image, another level)
        // is a mistake in a rule or in the table: builds with debug assertions (the tests) stop
        // on it; a release build reports the finding as it is.
        if cfg!(debug_assertions)
            && let Some(misfit) = crate::table::misfit(rule, self.role, level)
        {
            panic!("{misfit}");
        }
        self.findings.push(Finding {
            rule,
            level,
            role: self.role,
            image: self.image.clone(),
            message: message.into(),
            fix: fix.into(),
        });
    }

    /// Adds an error.
    pub(crate) fn error(&mut self, rule: &'static str, message: impl Into<String>, fix: impl Into<String>) {
        self.push(rule, Level::Error, message, fix);
    }

    /// Adds a warning.
    pub(crate) fn warn(&mut self, rule: &'static str, message: impl Into<String>, fix: impl Into<String>) {
        self.push(rule, Level::Warning, message, fix);
    }

    /// Adds an info finding.
    pub(crate) fn info(&mut self, rule: &'static str, message: impl Into<String>, fix: impl Into<String>) {
        self.push(rule, Level::Info, message, fix);
    }

    /// Reports that `rule` could not be decided: `what` is the question, `why` the missing input.
    pub(crate) fn not_verified(&mut self, rule: &'static str, what: &str, why: &str, fix: impl Into<String>) {
        self.info(rule, format!("not verified: {what}: {why}"), fix);
    }

    /// Adds the findings of another report (about the same image).
    pub(crate) fn extend(&mut self, other: Report) {
        self.findings.extend(other.findings);
    }

    /// The findings, sorted.
    pub(crate) fn finish(self) -> Vec<Finding> {
        let mut findings = self.findings;
        sort_findings(&mut findings);
        findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_role_image_and_rule() {
        let mut r = Report::new(Role::Build, "x");
        r.error(
            "BUILD-ENV-CNB_USER_ID",
            "CNB_USER_ID (1001) does not match the uid of User 'cnb' (1000)",
            "set ENV CNB_USER_ID=1000 in the build image, or change USER",
        );
        let f = r.finish();
        assert_eq!(
            f[0].to_string(),
            "build image 'x': CNB_USER_ID (1001) does not match the uid of User 'cnb' (1000) [BUILD-ENV-CNB_USER_ID]"
        );
        assert_eq!(f[0].fix(), "set ENV CNB_USER_ID=1000 in the build image, or change USER");
    }

    /// A finding the table does not allow stops a build with debug assertions.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(
        expected = "rule RUN-LABEL-REBASABLE (SHOULD (warning), applies to run) reports no error about a run image"
    )]
    fn a_finding_at_a_level_the_table_does_not_allow_is_caught() {
        Report::new(Role::Run, "x").error("RUN-LABEL-REBASABLE", "m", "f");
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(
        expected = "rule RUN-LABEL-REBASABLE (SHOULD (warning), applies to run) reports no warning about a build image"
    )]
    fn a_finding_about_an_image_the_rule_does_not_apply_to_is_caught() {
        Report::new(Role::Build, "x").warn("RUN-LABEL-REBASABLE", "m", "f");
    }

    #[test]
    fn sort_order_is_role_image_rule_message() {
        let mut run = Report::new(Role::Run, "a");
        run.warn("RUN-ENV-PATH", "b", "f");
        run.warn("BOTH-OS-ARCH-VALID", "z", "f");
        run.warn("BOTH-OS-ARCH-VALID", "a", "f");
        let mut all = run.finish();
        let mut build = Report::new(Role::Build, "z");
        build.error("LEGACY-PAIR-STACK-ID", "m", "f");
        all.extend(build.finish());
        sort_findings(&mut all);
        let keys: Vec<_> = all.iter().map(|f| (f.role, f.rule, f.message.as_str())).collect();
        assert_eq!(
            keys,
            [
                (Role::Build, "LEGACY-PAIR-STACK-ID", "m"),
                (Role::Run, "BOTH-OS-ARCH-VALID", "a"),
                (Role::Run, "BOTH-OS-ARCH-VALID", "z"),
                (Role::Run, "RUN-ENV-PATH", "b"),
            ]
        );
    }
}
