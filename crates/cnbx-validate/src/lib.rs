//! Base-image validator: the Cloud Native Buildpacks platform-spec rules for the build and run
//! images of a builder, plus the checks pack itself makes in `builder create`.
//!
//! The crate is pure: it takes what the caller knows about an image ([`ImageFacts`], from the
//! config and index entry) and, in **layer mode**, a [`RootFs`] rebuilt from the image's layer
//! tars. It does no network access and prints nothing; it returns [`Finding`]s, sorted by role,
//! image, rule id and message (see [`sort_findings`]).
//!
//! # API
//!
//! ```
//! use cnbx_validate::{ImageFacts, Options, Level, check_build_image};
//!
//! let build = ImageFacts::new("example/build", "linux", "amd64")
//!     .with_user("1000:1000")
//!     .with_env(["PATH=/usr/bin:/bin", "CNB_USER_ID=1000", "CNB_GROUP_ID=1000"]);
//! let findings = check_build_image(&build, None, &Options::default());
//! assert!(findings.iter().all(|f| f.level != Level::Error));
//! ```
//!
//! * [`check_build_image`], [`check_run_image`]: the single-image rules.
//! * [`check_pair`]: build image vs one run image; [`check_mirror`]: the run image rules for one
//!   mirror and its pairing with the build image (a mirror is an alternative run image).
//! * [`platform_missing`]: the `PAIR-TARGET-MATCH` error for a run image or mirror that has no
//!   manifest for the build image's platform at all.
//! * [`check_build_os`], [`check_stack_id`]: pack's checks that stop `builder create` before
//!   the other rules run (the build image's OS; an image's stack id against `[stack].id`), as
//!   findings with a rule id and a fix.
//! * [`check_mirrors`]: the `run.toml` rules for one run image and its mirrors.
//! * [`build_user`]: the uid/gid (from `CNB_USER_ID`/`CNB_GROUP_ID`) and home the builder needs
//!   for the ownership of `/workspace` and `/layers`.
//! * [`RootFs::from_layers`] / [`RootFsBuilder`]: layer mode (uncompressed tars in rootfs order).
//!
//! # Modes
//!
//! **Config-only** (`rootfs: None`) decides everything numeric forms and the `root` name allow.
//! What needs the image's files — a user *name*, the primary gid or home of a numeric uid, the
//! home directory's owner and mode, the os-release comparison — is reported as an `Info`
//! finding starting with `not verified:` that names the question and says layer mode would
//! decide it; it is never a silent pass. **Layer mode** (`rootfs: Some`) decides them from
//! `/etc/passwd`, `/etc/group`, os-release and directory headers (see [`rootfs`](RootFs)).
//!
//! # Rules
//!
//! Each rule has a stable id; the platform spec's MUST → error, SHOULD → warning, advisory
//! (no spec rule behind it) → warning. The rules, their levels and what decides them are the
//! data of [`table::RULES`], from which `docs/base-image-rules.md` is generated; a finding
//! can only carry an id of that table.
//!
//! `RUNTOML-MIRRORS-NEED-IMAGE` is a builder.toml rule (the config parser's job) and is not here.
//!
//! # Policy choices (where the spec leaves the decision to the platform)
//!
//! * **Item 5, `PAIR-TARGET-MATCH` "if specified".** `os`/`architecture` must be equal (error).
//!   `variant` and the distro labels: both set and different → error; set on one side only →
//!   **warning**, because lifecycle treats an unset target field as a wildcard (the build works)
//!   but a one-sided value usually means a forgotten label. `arm64/v8` equals plain `arm64`
//!   (containerd's normalisation). Mirrors are compared with the build image like run images.
//! * **Item 6, mixins "same set" vs superset.** pack's rule: the run image must carry every
//!   unstaged mixin of the build image (run ⊇ build) at the legacy level; extra run mixins are
//!   `Info`. Requiring equality would reject builders pack creates.
//! * **Item 7, "valid" PATH and identifiers.** PATH absent → error, `PATH=` passes, relative or
//!   empty elements → warning (`:`-separated; `;` and drive/UNC/`%VAR%` forms on Windows).
//!   Empty `os`/`architecture` → error; outside Go's `GOOS`/`GOARCH` lists → warning (OCI says
//!   SHOULD); variants outside OCI's table plus Go/containerd's (`arm` v5–v8, `arm64` v8[.x]/
//!   v9[.x], `amd64` v1–v4) → warning; index entry platform ≠ config → warning.
//! * **Item 8, run image user.** Platform API 0.7+: `RUN-USER-DIFFERENT` warns when the run uid
//!   equals the build uid (taken from `CNB_USER_ID`, which lifecycle runs as, else from `User`).
//!   Before 0.7: `LEGACY-RUN-USER-SAME` requires the same uid and gid (error). A root run user is
//!   an advisory warning (`RUN-USER-ROOT`: the extender fails on it, app images run as root), and
//!   a run user name without a passwd line an advisory warning (`RUN-USER-EXISTS`).
//! * **Item 9, `CNB_GROUP_ID` when `User` names a group.** We compare with the **effective**
//!   gid, the one the process gets: an explicit group in `User` wins (OCI semantics), else field
//!   4 of the passwd line, else 0 for a numeric uid without a passwd line (what runtimes do).
//!   Files lifecycle creates must match what the container really runs with; the message says
//!   where the gid came from.
//! * **Item 18, label formats.** `io.buildpacks.base.released`/`.metadata`: presence only.
//!   `io.buildpacks.rebasable`: exactly `true` passes; `false` warns that app images become
//!   non-rebasable without force; other `ParseBool` spellings warn (true ones as non-canonical,
//!   false ones as ambiguous because the rebaser only refuses the exact `false`); anything else
//!   warns as unrecognised.
//! * **Legacy stack levels.** MUSTs (errors) when validating for Platform API ≤ 0.11, SHOULDs
//!   (warnings) from 0.12. The rules a stack-only buildpack depends on (a missing stack id label,
//!   the mixins labels and names, a `CNB_STACK_ID` that differs from the stack id, the stack id
//!   and mixin pairing) are errors again when [`Options::legacy_stacks_required`] (a buildpack
//!   has `[[stacks]]` and no `[[targets]]`); a stack id with characters outside the recommended
//!   set stays a warning from 0.12 on, and a build image without `CNB_STACK_ID` is always a
//!   warning (pack never reads it). Setting `[stack].id` does not change these levels; pack's
//!   `stack '<cfg>' from builder config is incompatible with stack '<label>' from build image`
//!   (and `… from run image '<img>'`, also for mirrors) is reproduced verbatim as an error under
//!   `LEGACY-PAIR-STACK-ID`. An unparsable mixins label on the build image is always an error
//!   (pack fails to read it).
//! * **Platform API gating.** The 0.12+ rules (`*-LABEL-BASE-*`, `RUN-LABEL-REBASABLE`,
//!   `RUN-LABEL-TARGET-ID`, `BOTH-DISTRO-LABELS`) are skipped for older APIs, and
//!   `LEGACY-LABEL-STACK-DESCRIPTIVE` only runs for them.
//! * **pack parity.** `CNB_USER_ID`/`CNB_GROUP_ID` must be integers as Go's `strconv.Atoi`
//!   reads them (an optional sign, decimal digits: `+1000` is 1000) on every OS (pack's `failed to parse '<var>', value '<v>' should be an integer` and `image '<name>'
//!   missing required env var '<var>'`); an integer that is not a valid id (negative, > u32) gets
//!   its own message. The build image OS must be `linux`, `windows` or `freebsd` (pack's
//!   `provided image OS '<os>' must be either 'freebsd', 'linux' or 'windows'`).
//! * **Windows.** Accounts cannot be mapped to SIDs: the uid/gid comparisons are "not
//!   verified", `ContainerAdministrator` (or an unset `User`) is a warning, distro name must be
//!   empty and the distro version must equal `os.version`.
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod etc;
mod facts;
mod finding;
mod rootfs;
mod rules;
pub mod table;
mod user;

pub use facts::{ImageFacts, IndexPlatform, Options, PlatformApi};
pub use finding::{Finding, Level, Role, sort_findings};
pub use rootfs::{
    DirInfo, FileState, GROUP, OS_RELEASE, PASSWD, RETAINED_FILES, RootFs, RootFsBuilder, RootFsError, SymlinkLoop,
    USR_LIB_OS_RELEASE,
};
pub use rules::mirrors::RunImageRef;
pub use table::{RULES, Rule, RuleLevel, rule_by_id};

use finding::Report;
use rules::Subject;
use rules::env::{CNB_GROUP_ID, CNB_USER_ID, cnb_id};

/// Runs the build image rules. `rootfs` is the layer-mode view, `None` for config-only mode.
pub fn check_build_image(facts: &ImageFacts, rootfs: Option<&RootFs>, opts: &Options) -> Vec<Finding> {
    rules::build_image(facts, rootfs, opts).finish()
}

/// Runs the run image rules (for each `[[run.images]].image`; mirrors get [`check_mirror`]).
pub fn check_run_image(facts: &ImageFacts, rootfs: Option<&RootFs>, opts: &Options) -> Vec<Finding> {
    rules::run_image(Role::Run, facts, rootfs, opts).finish()
}

/// Compares the build image with one run image: `PAIR-TARGET-MATCH`, `RUN-USER-DIFFERENT`
/// (or `LEGACY-RUN-USER-SAME`), `LEGACY-PAIR-STACK-ID`, `LEGACY-PAIR-MIXINS`. Findings are
/// about the run image.
pub fn check_pair(
    build: (&ImageFacts, Option<&RootFs>),
    run: (&ImageFacts, Option<&RootFs>),
    opts: &Options,
) -> Vec<Finding> {
    let build = Subject::new(Role::Build, build.0, build.1);
    let run = Subject::new(Role::Run, run.0, run.1);
    rules::pair(&build, &run, opts).finish()
}

/// Runs every run image rule on one run image mirror and compares it with the build image, as
/// [`check_run_image`] and [`check_pair`] do for a run image: a mirror is an alternative run
/// image, chosen instead of the run image when it is on the app image's registry, so it must
/// meet the same rules. Findings are about the mirror.
pub fn check_mirror(
    build: (&ImageFacts, Option<&RootFs>),
    mirror: (&ImageFacts, Option<&RootFs>),
    opts: &Options,
) -> Vec<Finding> {
    let mut report = rules::run_image(Role::Mirror, mirror.0, mirror.1, opts);
    let build = Subject::new(Role::Build, build.0, build.1);
    let mirror = Subject::new(Role::Mirror, mirror.0, mirror.1);
    report.extend(rules::pair(&build, &mirror, opts));
    report.finish()
}

/// `PAIR-TARGET-MATCH` for a run image or mirror (`role`) named `image` that has no manifest
/// for `platform`, the platform of the build image `build`, at all: `available` lists the
/// platforms it has (as the image index or config gives them). Always an error: the lifecycle
/// would pull an image of another platform, or nothing.
pub fn platform_missing(build: &ImageFacts, role: Role, image: &str, platform: &str, available: &str) -> Finding {
    rules::platform::missing(build, role, image, platform, available)
}

/// pack's first check of the build image in `builder create`: its OS must be `linux`,
/// `windows` or `freebsd`. The `BUILD-OS-SUPPORTED` error (pack's sentence, the rule id and a
/// fix) when it is not, an empty OS included (which [`check_build_image`] reports as
/// `BOTH-OS-ARCH-VALID` instead).
pub fn check_build_os(facts: &ImageFacts) -> Option<Finding> {
    let mut r = Report::new(Role::Build, &facts.name);
    rules::platform::build_os(&facts.os, &mut r);
    r.finish().into_iter().next()
}

/// pack's check of an image's stack label against builder.toml's `[stack].id` (`stack_id`;
/// nothing is checked when it is empty), for the build image (`role` = [`Role::Build`]), a run
/// image or a mirror: the `LEGACY-PAIR-STACK-ID` error (pack's sentence, the rule id and a
/// fix) when they differ. [`check_build_image`] and [`check_run_image`] report it too.
pub fn check_stack_id(role: Role, facts: &ImageFacts, stack_id: &str) -> Option<Finding> {
    let s = Subject::new(role, facts, None);
    let mut r = s.report();
    let opts = Options { stack_id: Some(stack_id.to_owned()), ..Options::default() };
    rules::legacy::config_stack_id(&s, &mut r, &opts);
    r.finish().into_iter().next()
}

/// The `run.toml` rules for one `[[run.images]]` entry: `RUNTOML-MIRROR-SAME-ID` and
/// `RUNTOML-UNIQUE-REGISTRY`. Findings are about the mirrors.
pub fn check_mirrors(image: &RunImageRef, mirrors: &[RunImageRef]) -> Vec<Finding> {
    let mut findings: Vec<Finding> =
        rules::mirrors::check(image, mirrors).into_iter().flat_map(Report::finish).collect();
    sort_findings(&mut findings);
    findings
}

/// The build user as the builder needs it for the ownership of `/workspace`, `/layers` and the
/// other directories it creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildUser {
    /// `CNB_USER_ID`.
    pub uid: u32,
    /// `CNB_GROUP_ID`.
    pub gid: u32,
    /// The home directory of `User` (`HOME` in `Env`, else `/etc/passwd` in layer mode), if known.
    pub home: Option<String>,
}

/// The build user's ids from `CNB_USER_ID`/`CNB_GROUP_ID` (what pack uses), or the
/// `BUILD-ENV-CNB_USER_ID`/`BUILD-ENV-CNB_GROUP_ID` error finding (pack's message) for the first
/// one that is missing or not an integer.
pub fn build_user(facts: &ImageFacts, rootfs: Option<&RootFs>) -> Result<BuildUser, Finding> {
    let s = Subject::new(Role::Build, facts, rootfs);
    let id = |var, rule, expected| {
        cnb_id(facts, &s.env, var, expected).map_err(|p| Finding {
            rule,
            level: Level::Error,
            role: Role::Build,
            image: facts.name.clone(),
            message: p.message,
            fix: p.fix,
        })
    };
    let uid = id(CNB_USER_ID, "BUILD-ENV-CNB_USER_ID", s.user.uid.known().copied())?;
    let gid = id(CNB_GROUP_ID, "BUILD-ENV-CNB_GROUP_ID", s.user.gid.known().map(|g| g.value))?;
    Ok(BuildUser { uid, gid, home: s.user.home.known().map(|h| h.path.clone()) })
}
