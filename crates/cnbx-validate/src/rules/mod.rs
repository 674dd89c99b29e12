//! The rules, one function per rule (or per small family of rules), grouped by topic.
//!
//! Each function takes a [`Subject`] (one image, its parsed env and resolved user) and pushes
//! findings into a [`Report`]. Rules that exist for both image kinds (`BUILD-ENV-PATH` and
//! `RUN-ENV-PATH`, the `*-LABEL-BASE-*` labels) are written once and pick their id from a
//! [`PerRole`] pair.

pub(crate) mod env;
pub(crate) mod labels;
pub(crate) mod legacy;
pub(crate) mod mirrors;
pub(crate) mod platform;
pub(crate) mod user;

use crate::facts::{Env, ImageFacts, Options, PlatformApi};
use crate::finding::{Level, Report, Role};
use crate::rootfs::RootFs;
use crate::user::{ResolvedUser, resolve};

/// One image under validation.
pub(crate) struct Subject<'a> {
    pub(crate) role: Role,
    pub(crate) facts: &'a ImageFacts,
    pub(crate) rootfs: Option<&'a RootFs>,
    pub(crate) env: Env,
    pub(crate) user: ResolvedUser,
}

impl<'a> Subject<'a> {
    pub(crate) fn new(role: Role, facts: &'a ImageFacts, rootfs: Option<&'a RootFs>) -> Self {
        let env = Env::parse(&facts.env);
        let user = resolve(facts, &env, rootfs);
        Self { role, facts, rootfs, env, user }
    }

    /// An empty report about this image.
    pub(crate) fn report(&self) -> Report {
        Report::new(self.role, &self.facts.name)
    }

    pub(crate) fn is_windows(&self) -> bool {
        self.facts.is_windows()
    }

    /// `User 'x'`, or the default user when `User` is empty (root on Linux; on Windows the
    /// image's default account).
    pub(crate) fn describe_user(&self) -> String {
        if self.is_windows() && self.facts.user.is_empty() {
            "the default account".to_owned()
        } else {
            self.user.spec.describe()
        }
    }
}

/// The ids of one rule that exists for build and run images.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PerRole {
    pub(crate) build: &'static str,
    pub(crate) run: &'static str,
}

impl PerRole {
    pub(crate) fn id(self, role: Role) -> &'static str {
        match role {
            Role::Build => self.build,
            Role::Run | Role::Mirror => self.run,
        }
    }
}

/// Whether the rules introduced with targets (Platform API 0.12) apply.
pub(crate) fn targets_era(opts: &Options) -> bool {
    opts.platform_api >= PlatformApi::TARGETS
}

/// The level of a legacy stack rule whose level depends only on the Platform API: a MUST up to
/// Platform API 0.11, a SHOULD (kept for older platforms and buildpacks) from 0.12.
pub(crate) fn version_level(opts: &Options) -> Level {
    if targets_era(opts) { Level::Warning } else { Level::Error }
}

/// The level of the legacy stack rules a stack-only buildpack depends on (the stack id and
/// mixin labels and their pairing): errors when a buildpack on the builder has `[[stacks]]` and
/// no `[[targets]]` (it fails detection without a matching stack), else [`version_level`].
pub(crate) fn legacy_level(opts: &Options) -> Level {
    if opts.legacy_stacks_required { Level::Error } else { version_level(opts) }
}

/// Only ASCII letters, digits, `.`, `/` and `-` (target ids and stack ids).
pub(crate) fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'/' | b'-'))
}

/// `'a', 'b', 'c'`.
pub(crate) fn quoted_list<'s>(items: impl IntoIterator<Item = &'s str>) -> String {
    items.into_iter().map(|i| format!("'{i}'")).collect::<Vec<_>>().join(", ")
}

/// Runs the single-image rules for a build image.
pub(crate) fn build_image(facts: &ImageFacts, rootfs: Option<&RootFs>, opts: &Options) -> Report {
    let s = Subject::new(Role::Build, facts, rootfs);
    let mut r = s.report();
    env::syntax(&s, &mut r);
    env::path(&s, &mut r);
    user::build_nonroot(&s, &mut r);
    user::build_home_writable(&s, &mut r);
    user::build_cnb_user_id(&s, &mut r);
    user::build_cnb_group_id(&s, &mut r);
    platform::build_os_supported(&s, &mut r);
    platform::os_arch_valid(&s, &mut r);
    platform::variant_valid(&s, &mut r);
    labels::base_labels(&s, &mut r, opts);
    labels::distro_labels(&s, &mut r, opts);
    legacy::image(&s, &mut r, opts);
    legacy::config_stack_id(&s, &mut r, opts);
    r
}

/// Runs the single-image rules for a run image (`role` = [`Role::Run`]) or a run image mirror
/// ([`Role::Mirror`]: a mirror is an alternative run image and gets the same rules).
pub(crate) fn run_image(role: Role, facts: &ImageFacts, rootfs: Option<&RootFs>, opts: &Options) -> Report {
    let s = Subject::new(role, facts, rootfs);
    let mut r = s.report();
    env::syntax(&s, &mut r);
    env::path(&s, &mut r);
    user::run_user_root(&s, &mut r);
    user::run_user_exists(&s, &mut r);
    platform::os_arch_valid(&s, &mut r);
    platform::variant_valid(&s, &mut r);
    labels::base_labels(&s, &mut r, opts);
    labels::rebasable(&s, &mut r, opts);
    labels::target_id(&s, &mut r, opts);
    labels::distro_labels(&s, &mut r, opts);
    legacy::image(&s, &mut r, opts);
    legacy::config_stack_id(&s, &mut r, opts);
    r
}

/// Runs the rules comparing a build image with a run image or a mirror.
pub(crate) fn pair(build: &Subject<'_>, other: &Subject<'_>, opts: &Options) -> Report {
    let mut r = other.report();
    platform::target_match(build, other, &mut r);
    legacy::pair(build, other, &mut r, opts);
    user::pair_users(build, other, &mut r, opts);
    r
}
