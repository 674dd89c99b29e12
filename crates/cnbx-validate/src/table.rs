//! The rule table: every rule the validator checks, with its id, the images it applies to, its
//! level, what it checks and whether it needs the image's layers. Findings may only carry ids
//! from this table, for the images and at the levels it states (checked when a finding is made,
//! and by a test over the rule sources), and `docs/base-image-rules.md` is generated from it
//! ([`markdown`]; a test checks the committed file), so the documentation cannot drift from the
//! code. Results remembered from a validation are keyed by the table ([`fingerprint`]), so a
//! rule added or changed is applied to images a remembered validation passed before.

use std::fmt::Write as _;

use crate::finding::{Level, Role};

/// How serious a broken rule is, as the table states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleLevel {
    /// A MUST of the spec (or a check pack enforces): an error.
    Must,
    /// A SHOULD of the spec: a warning.
    Should,
    /// No spec rule behind it, but worth knowing: a warning.
    Advisory,
    /// A stack-era rule: a MUST up to Platform API 0.11, a SHOULD from 0.12 (and a MUST again
    /// while a buildpack with `[[stacks]]` and no `[[targets]]` is on the builder).
    Legacy,
    /// Levels that depend on what is wrong; [`Rule::levels`] says which.
    Mixed,
}

impl RuleLevel {
    /// How the table shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Must => "MUST (error)",
            Self::Should => "SHOULD (warning)",
            Self::Advisory => "advisory (warning)",
            Self::Legacy => "MUST up to Platform API 0.11, SHOULD from 0.12",
            Self::Mixed => "see the rule",
        }
    }
}

/// What a rule needs to be decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// The image config (and index entry) only.
    Config,
    /// The config decides some cases; the layers decide the rest (names, homes, os-release).
    ConfigThenLayers,
    /// The layers (`/etc/passwd`, `/etc/group`, directory headers).
    Layers,
    /// The digests and registries of a run image and its mirrors.
    References,
}

impl Needs {
    /// How the table shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::ConfigThenLayers => "config, then layers",
            Self::Layers => "layers",
            Self::References => "references",
        }
    }
}

/// The images a rule applies to, and so the roles its findings may be about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppliesTo {
    /// The build image.
    Build,
    /// Each run image and mirror (a mirror is an alternative run image).
    Run,
    /// The build image, each run image and each mirror.
    BuildAndRun,
    /// The build image paired with each run image or mirror; findings are about the run image
    /// or mirror.
    Pair,
    /// As [`AppliesTo::Pair`], and the build image compared with builder.toml's `[stack].id`.
    PairAndStackId,
    /// A run image's mirrors, compared with the run image; findings are about the mirrors.
    Mirrors,
}

impl AppliesTo {
    /// How the table shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Build => "build",
            Self::Run => "run",
            Self::BuildAndRun => "build, run",
            Self::Pair => "pair",
            Self::PairAndStackId => "pair; build, with `[stack].id`",
            Self::Mirrors => "mirrors",
        }
    }

    /// The roles of the images its findings may be about.
    pub fn roles(self) -> &'static [Role] {
        match self {
            Self::Build => &[Role::Build],
            Self::Run | Self::Pair => &[Role::Run, Role::Mirror],
            Self::BuildAndRun | Self::PairAndStackId => &[Role::Build, Role::Run, Role::Mirror],
            Self::Mirrors => &[Role::Mirror],
        }
    }
}

/// One rule of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The stable id findings carry (`BUILD-USER-NONROOT`).
    pub id: &'static str,
    /// The images it applies to.
    pub applies_to: AppliesTo,
    /// Its level.
    pub level: RuleLevel,
    /// For [`RuleLevel::Mixed`] rules (and refinements of the others): which case is which
    /// level.
    pub levels: &'static str,
    /// What it checks.
    pub checks: &'static str,
    /// What it needs to be decided (without it, the finding is "not verified", never a pass).
    pub needs: Needs,
    /// Whether this [`RuleLevel::Must`] rule reports some cases as warnings (`levels` says
    /// which).
    pub also_warns: bool,
    /// The revision of the rule's logic. Bump it when what the rule reports changes while its
    /// row stays the same: results remembered from the old logic are then not reused.
    pub revision: u32,
}

impl Rule {
    /// Whether a finding of this rule may be about an image in `role` at `level`: a role of
    /// [`Rule::applies_to`]; an error for a MUST, legacy or mixed rule; a warning for a SHOULD,
    /// advisory, legacy or mixed rule (or a MUST rule that [`Rule::also_warns`]); info ("not
    /// verified", or a note that needs no action) for any rule.
    pub fn allows(&self, role: Role, level: Level) -> bool {
        self.applies_to.roles().contains(&role)
            && match level {
                Level::Error => matches!(self.level, Must | Legacy | Mixed),
                Level::Warning => self.also_warns || matches!(self.level, Should | Advisory | Legacy | Mixed),
                Level::Info => true,
            }
    }

    /// The same rule, reporting some cases as warnings (see [`Rule::also_warns`]).
    const fn also_warns(self) -> Self {
        Self { also_warns: true, ..self }
    }

    /// The same rule at logic revision `revision` (see [`Rule::revision`]).
    #[allow(dead_code)] // every rule is at its first revision so far
    const fn revised(self, revision: u32) -> Self {
        Self { revision, ..self }
    }
}

const fn rule(
    id: &'static str,
    applies_to: AppliesTo,
    level: RuleLevel,
    levels: &'static str,
    checks: &'static str,
    needs: Needs,
) -> Rule {
    Rule { id, applies_to, level, levels, checks, needs, also_warns: false, revision: 1 }
}

/// The revision of the logic the rules share (reading the image's env, resolving its user
/// from `/etc/passwd` and `/etc/group`, reading os-release and directory headers). Bump it
/// when that changes what any rule reports.
pub const SHARED_LOGIC_REVISION: u32 = 1;

use AppliesTo::{Build, BuildAndRun, Mirrors, Pair, PairAndStackId, Run};
use Needs::{Config, ConfigThenLayers, Layers, References};
use RuleLevel::{Advisory, Legacy, Mixed, Must, Should};

/// Every rule, in the order the documentation lists them.
pub const RULES: &[Rule] = &[
    rule(
        "BUILD-USER-NONROOT",
        Build,
        Must,
        "on Windows a warning (an account name cannot be checked)",
        "`User` is set and does not resolve to root (uid 0); a user name must have a passwd entry",
        ConfigThenLayers,
    )
    .also_warns(),
    rule(
        "BUILD-USER-HOME-WRITABLE",
        Build,
        Must,
        "",
        "the build user's home directory (`HOME`, else passwd) exists and the user can write to it",
        Layers,
    ),
    rule(
        "BUILD-ENV-CNB_USER_ID",
        Build,
        Must,
        "",
        "`CNB_USER_ID` is set, is an integer, and equals the uid `User` resolves to",
        ConfigThenLayers,
    ),
    rule(
        "BUILD-ENV-CNB_GROUP_ID",
        Build,
        Must,
        "",
        "`CNB_GROUP_ID` is set, is an integer, and equals the group the build user runs with",
        ConfigThenLayers,
    ),
    rule(
        "BUILD-ENV-PATH",
        Build,
        Mixed,
        "error when `PATH` is absent; warning for relative or empty elements",
        "`PATH` is in the env (`PATH=` counts as set)",
        Config,
    ),
    rule(
        "BUILD-OS-SUPPORTED",
        Build,
        Must,
        "",
        "the OS is `linux`, `windows` or `freebsd` (pack's check, which `builder create` makes before the other rules; \
         an empty OS fails it there, and is `BOTH-OS-ARCH-VALID` for the other rules)",
        Config,
    ),
    rule("BUILD-LABEL-BASE-MAINTAINER", Build, Should, "", "label `io.buildpacks.base.maintainer` is set", Config),
    rule("BUILD-LABEL-BASE-HOMEPAGE", Build, Should, "", "label `io.buildpacks.base.homepage` is set", Config),
    rule("BUILD-LABEL-BASE-RELEASED", Build, Should, "", "label `io.buildpacks.base.released` is set", Config),
    rule("BUILD-LABEL-BASE-DESCRIPTION", Build, Should, "", "label `io.buildpacks.base.description` is set", Config),
    rule("BUILD-LABEL-BASE-METADATA", Build, Should, "", "label `io.buildpacks.base.metadata` is set", Config),
    rule(
        "RUN-ENV-PATH",
        Run,
        Mixed,
        "error when `PATH` is absent; warning for relative or empty elements",
        "`PATH` is in the env (`PATH=` counts as set)",
        Config,
    ),
    rule("RUN-LABEL-BASE-MAINTAINER", Run, Should, "", "label `io.buildpacks.base.maintainer` is set", Config),
    rule("RUN-LABEL-BASE-HOMEPAGE", Run, Should, "", "label `io.buildpacks.base.homepage` is set", Config),
    rule("RUN-LABEL-BASE-RELEASED", Run, Should, "", "label `io.buildpacks.base.released` is set", Config),
    rule("RUN-LABEL-BASE-DESCRIPTION", Run, Should, "", "label `io.buildpacks.base.description` is set", Config),
    rule("RUN-LABEL-BASE-METADATA", Run, Should, "", "label `io.buildpacks.base.metadata` is set", Config),
    rule(
        "RUN-LABEL-REBASABLE",
        Run,
        Should,
        "",
        "label `io.buildpacks.rebasable` is `true` (`false` makes app images non-rebasable without force)",
        Config,
    ),
    rule(
        "RUN-LABEL-TARGET-ID",
        Run,
        Mixed,
        "warning when missing; error when it has characters other than letters, digits, `.`, `/` and `-`",
        "label `io.buildpacks.base.id` is set and well formed",
        Config,
    ),
    rule(
        "RUN-USER-ROOT",
        Run,
        Advisory,
        "",
        "the run user is not root (the extender fails on a root run user, and apps would run as root)",
        ConfigThenLayers,
    ),
    rule("RUN-USER-EXISTS", Run, Advisory, "", "a run user given by name has a passwd entry", Layers),
    rule(
        "RUN-USER-DIFFERENT",
        Pair,
        Should,
        "",
        "the run image's user has another uid than the build user (Platform API 0.7 and later)",
        ConfigThenLayers,
    ),
    rule(
        "LEGACY-RUN-USER-SAME",
        Pair,
        Must,
        "only when validating for Platform API older than 0.7",
        "the run user has the same uid and gid as the build user",
        ConfigThenLayers,
    ),
    rule(
        "BOTH-OS-ARCH-VALID",
        BuildAndRun,
        Mixed,
        "error when empty; warning when outside Go's lists or different from the index entry",
        "`os` and `architecture` are set, known, and agree with the index entry",
        Config,
    ),
    rule(
        "BOTH-VARIANT-VALID",
        BuildAndRun,
        Should,
        "",
        "`variant`, when set, is one OCI or Go knows for the architecture",
        Config,
    ),
    rule(
        "BOTH-DISTRO-LABELS",
        BuildAndRun,
        Should,
        "",
        "labels `io.buildpacks.base.distro.name`/`.version` are set and equal `ID`/`VERSION_ID` of os-release \
         (Windows: version equals `os.version`)",
        ConfigThenLayers,
    ),
    rule(
        "BOTH-ENV-DUPLICATE",
        BuildAndRun,
        Advisory,
        "",
        "no variable is set twice in the env (the last one wins)",
        Config,
    ),
    rule("BOTH-ENV-SYNTAX", BuildAndRun, Advisory, "", "every env entry has the form `KEY=VALUE`", Config),
    rule(
        "PAIR-TARGET-MATCH",
        Pair,
        Mixed,
        "error when os, architecture, variant or distro differ, or the run image has no manifest for the build \
         image's platform; warning when a variant or distro is set on one side only",
        "the build image and each run image (and mirror) are for the same platform and distribution",
        Config,
    ),
    rule(
        "RUNTOML-MIRROR-SAME-ID",
        Mirrors,
        Should,
        "",
        "every mirror has the same image id (config digest) as its run image",
        References,
    ),
    rule(
        "RUNTOML-UNIQUE-REGISTRY",
        Mirrors,
        Should,
        "",
        "a run image and its mirrors are on different registries",
        References,
    ),
    rule(
        "LEGACY-LABEL-STACK-ID",
        BuildAndRun,
        Legacy,
        "a stack id with characters outside letters, digits, `.`, `/` and `-` stays a warning from 0.12",
        "label `io.buildpacks.stack.id` is set and well formed",
        Config,
    ),
    rule(
        "LEGACY-BUILD-ENV-CNB_STACK_ID",
        Build,
        Legacy,
        "a missing `CNB_STACK_ID` is always a warning (pack never reads it)",
        "`CNB_STACK_ID` is set and equals the stack id",
        Config,
    ),
    rule(
        "LEGACY-LABEL-MIXINS",
        BuildAndRun,
        Legacy,
        "an unreadable label on the build image is always an error",
        "label `io.buildpacks.stack.mixins` is a JSON array of strings",
        Config,
    ),
    rule(
        "LEGACY-MIXIN-NAME",
        BuildAndRun,
        Legacy,
        "",
        "`:` appears in a mixin only as a `build:`/`run:` stage prefix, and no image carries the other stage's mixins",
        Config,
    ),
    rule(
        "LEGACY-PAIR-STACK-ID",
        PairAndStackId,
        Legacy,
        "a stack id that differs from `[stack].id` is always an error (pack's check)",
        "the run image's stack id equals the build image's; with `[stack].id` in builder.toml, the build image's, \
         each run image's and each mirror's equal it",
        Config,
    ),
    rule(
        "LEGACY-PAIR-MIXINS",
        Pair,
        Legacy,
        "extra mixins on the run image are only noted",
        "the run image has every unstaged mixin of the build image",
        Config,
    ),
    rule(
        "LEGACY-LABEL-STACK-DESCRIPTIVE",
        BuildAndRun,
        Should,
        "only when validating for Platform API older than 0.12",
        "the descriptive `io.buildpacks.stack.*` labels (maintainer, homepage, distro, released, description, \
         metadata) are set",
        Config,
    ),
];

/// The rule with this id.
pub fn rule_by_id(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// What a finding of `rule` about an image in `role` at `level` breaks in the table: `None`
/// when the table has the rule and allows them ([`Rule::allows`]).
pub fn misfit(rule: &str, role: Role, level: Level) -> Option<String> {
    match rule_by_id(rule) {
        None => Some(format!("rule {rule} is not in the rule table")),
        Some(r) if !r.allows(role, level) => Some(format!(
            "rule {rule} ({}, applies to {}) reports no {level} about a {role}",
            r.level.as_str(),
            r.applies_to.as_str()
        )),
        Some(_) => None,
    }
}

/// The table as text, for the keys of remembered validation results: every rule's id, the
/// images it applies to, its level and how it is refined, what it checks and needs and the
/// revision of its logic, and the revision of the logic the rules share. Any change to the
/// table changes it.
pub fn fingerprint() -> String {
    fingerprint_of(RULES, SHARED_LOGIC_REVISION)
}

fn fingerprint_of(rules: &[Rule], shared_revision: u32) -> String {
    let mut out = format!("cnbx-validate rules, shared logic revision {shared_revision}\n");
    for r in rules {
        let _ = writeln!(
            out,
            "{} | {:?} | {:?} {} ({}) | {} | {:?} | revision {}",
            r.id, r.applies_to, r.level, r.also_warns, r.levels, r.checks, r.needs, r.revision
        );
    }
    out
}

/// `docs/base-image-rules.md`: the table as markdown.
pub fn markdown() -> String {
    let mut out = String::from(
        "<!-- Generated from crates/cnbx-validate/src/table.rs by `cargo run -p xtask -- gen-docs`; do not edit. -->\n\
         # Base-image rules\n\n\
         The rules `cnbx builder create` and `cnbx base-image check` apply to build and run images (and\n\
         run-image mirrors), from the Cloud Native Buildpacks platform specification and the checks\n\
         pack makes. A MUST that is broken is an error (the builder is not created; `base-image check`\n\
         exits 1), a SHOULD or an advisory rule a warning. A rule that cannot be decided with what is\n\
         available (a user *name* without the image's layers, say) is reported as \"not verified\",\n\
         never as a pass.\n\n\
         \"Needs\" says what decides the rule: the image config alone, the config and then the layers\n\
         (`/etc/passwd`, `/etc/group`, `/etc/os-release`, directory headers; read in layer mode, the\n\
         default), the layers only, or the references of a run image and its mirrors.\n\n\
         | rule | applies to | level | checks | needs |\n|---|---|---|---|---|\n",
    );
    for r in RULES {
        let level = if r.levels.is_empty() {
            r.level.as_str().to_owned()
        } else {
            format!("{}: {}", r.level.as_str(), r.levels)
        };
        let applies_to = r.applies_to.as_str();
        out.push_str(&format!("| `{}` | {applies_to} | {level} | {} | {} |\n", r.id, r.checks, r.needs.as_str()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), before, "duplicate rule ids");
        for id in ids {
            assert!(id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_'), "{id}");
        }
    }

    /// Every id the rule sources name is in the table, and every rule of the table is checked
    /// somewhere: a new rule cannot be added without its row, nor a row kept for a rule that is
    /// gone.
    #[test]
    fn the_table_and_the_rule_sources_name_the_same_ids() {
        let sources = [
            include_str!("rules/env.rs"),
            include_str!("rules/labels.rs"),
            include_str!("rules/legacy.rs"),
            include_str!("rules/mirrors.rs"),
            include_str!("rules/platform.rs"),
            include_str!("rules/user.rs"),
        ]
        .join("\n");
        let is_id_char = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_';
        let mut named: Vec<&str> = Vec::new();
        for (i, _) in sources.match_indices('"') {
            let rest = &sources[i + 1..];
            let len = rest.bytes().take_while(|b| is_id_char(*b)).count();
            let candidate = &rest[..len];
            if rest[len..].starts_with('"')
                && candidate.contains('-')
                && candidate.starts_with(|c: char| c.is_ascii_uppercase())
                && ["BUILD-", "RUN-", "BOTH-", "PAIR-", "LEGACY-", "RUNTOML-"].iter().any(|p| candidate.starts_with(p))
            {
                named.push(candidate);
            }
        }
        for id in &named {
            assert!(rule_by_id(id).is_some(), "{id} is used but not in the table");
        }
        for r in RULES {
            assert!(named.contains(&r.id), "{} is in the table but no rule reports it", r.id);
        }
    }

    #[test]
    fn findings_must_fit_the_rule_s_images_and_level() {
        assert_eq!(misfit("BUILD-USER-NONROOT", Role::Build, Level::Error), None);
        assert_eq!(misfit("BUILD-USER-NONROOT", Role::Build, Level::Warning), None, "on Windows");
        assert_eq!(misfit("BUILD-USER-HOME-WRITABLE", Role::Build, Level::Info), None, "not verified");
        assert!(misfit("BUILD-USER-HOME-WRITABLE", Role::Build, Level::Warning).is_some());
        assert!(misfit("BUILD-USER-NONROOT", Role::Run, Level::Error).is_some());
        assert_eq!(misfit("RUN-ENV-PATH", Role::Mirror, Level::Error), None, "a mirror gets the run rules");
        assert!(misfit("RUN-LABEL-REBASABLE", Role::Run, Level::Error).is_some());
        assert!(misfit("RUNTOML-UNIQUE-REGISTRY", Role::Run, Level::Warning).is_some());
        assert_eq!(misfit("LEGACY-PAIR-STACK-ID", Role::Build, Level::Error), None, "[stack].id");
        assert!(misfit("PAIR-TARGET-MATCH", Role::Build, Level::Error).is_some());
        assert_eq!(
            misfit("NO-SUCH-RULE", Role::Build, Level::Info).as_deref(),
            Some("rule NO-SUCH-RULE is not in the rule table")
        );
    }

    /// Every change to the table changes its fingerprint, and so the keys of the validations
    /// remembered with the table as it was.
    #[test]
    fn any_change_to_the_table_changes_the_fingerprint() {
        let base = fingerprint_of(RULES, SHARED_LOGIC_REVISION);
        assert_eq!(fingerprint(), base);
        type Edit = fn(&mut Vec<Rule>);
        let edits: [(&str, Edit); 8] = [
            ("a rule added", |r| r.push(rule("RUN-NEW", Run, Should, "", "something", Config))),
            ("a rule removed", |r| {
                r.pop();
            }),
            ("another level", |r| r[0].level = Should),
            ("a refined level", |r| r[0].levels = "always"),
            ("other images", |r| r[0].applies_to = BuildAndRun),
            ("a MUST that warns", |r| r[1] = r[1].also_warns()),
            ("a revised rule", |r| r[0] = r[0].revised(2)),
            ("what it needs", |r| r[0].needs = Layers),
        ];
        for (what, edit) in edits {
            let mut rules = RULES.to_vec();
            edit(&mut rules);
            assert_ne!(fingerprint_of(&rules, SHARED_LOGIC_REVISION), base, "{what}");
        }
        assert_ne!(fingerprint_of(RULES, SHARED_LOGIC_REVISION + 1), base, "the shared logic revised");
    }

    /// The committed documentation is what the table renders. Regenerate it with
    /// `cargo run -p xtask -- gen-docs`.
    #[test]
    fn the_committed_rules_document_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/base-image-rules.md");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(committed == markdown(), "docs/base-image-rules.md is stale: run `cargo run -p xtask -- gen-docs`");
    }
}
