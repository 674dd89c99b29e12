//! The user rules: `BUILD-USER-NONROOT`, `BUILD-USER-HOME-WRITABLE`, `BUILD-ENV-CNB_USER_ID`,
//! `BUILD-ENV-CNB_GROUP_ID`, `RUN-USER-ROOT`, `RUN-USER-EXISTS`, `RUN-USER-DIFFERENT` and
//! `LEGACY-RUN-USER-SAME`.
//!
//! What a rule cannot decide (a user name in config-only mode, a passwd file layer mode could not
//! read, a Windows account) becomes an `Info` "not verified" finding, never a silent pass.

use super::Subject;
use super::env::{CNB_GROUP_ID, CNB_USER_ID, IdVar, cnb_id};
use crate::facts::{Options, PlatformApi};
use crate::finding::Report;
use crate::user::{Fact, Gid, GidOrigin, UserPart, WINDOWS_NOT_VERIFIED};

const NONROOT: &str = "BUILD-USER-NONROOT";
const HOME_WRITABLE: &str = "BUILD-USER-HOME-WRITABLE";
const RUN_ROOT: &str = "RUN-USER-ROOT";
const RUN_EXISTS: &str = "RUN-USER-EXISTS";
const RUN_DIFFERENT: &str = "RUN-USER-DIFFERENT";
const RUN_SAME: &str = "LEGACY-RUN-USER-SAME";

const LAYER_MODE_FIX: &str = "run the check in layer mode (with the image layers), or use a numeric USER (uid:gid)";
const WINDOWS_ADMIN: &str = "ContainerAdministrator";

/// Whether a Windows `User` is (or defaults to) the administrator account; `None` if it is
/// another account.
fn windows_admin(user: &str) -> Option<&'static str> {
    let account = user.split_once(':').map_or(user, |(u, _)| u);
    if account.is_empty() {
        Some("User is not set, so the image's default account (often ContainerAdministrator) is used")
    } else if account.eq_ignore_ascii_case(WINDOWS_ADMIN) {
        Some("User is ContainerAdministrator, the administrator account")
    } else {
        None
    }
}

/// `BUILD-USER-NONROOT`: `User` is set and does not resolve to root.
pub(crate) fn build_nonroot(s: &Subject<'_>, r: &mut Report) {
    let fix = "set USER in the build image to a non-root user, e.g. USER 1000:1000 (created in /etc/passwd)";
    if s.is_windows() {
        if let Some(problem) = windows_admin(&s.facts.user) {
            r.warn(
                NONROOT,
                problem,
                "set USER ContainerUser (or another non-administrator account) in the build image",
            );
        }
        return;
    }
    let spec = &s.user.spec;
    let desc = spec.describe();
    match (spec.user_part(), &s.user.uid) {
        _ if spec.raw.is_empty() => r.error(NONROOT, "User is not set, so the build runs as root", fix),
        (UserPart::Root | UserPart::Uid(0), _) => r.error(NONROOT, format!("{desc} is root (uid 0)"), fix),
        (_, Fact::Known(0)) => r.error(NONROOT, format!("{desc} resolves to uid 0 (root) in /etc/passwd"), fix),
        (_, Fact::Known(_)) => {}
        (_, Fact::NotVerified(why)) => r.not_verified(NONROOT, &format!("whether {desc} is root"), why, LAYER_MODE_FIX),
        (UserPart::BadUid, Fact::Broken(why)) => {
            r.error(NONROOT, format!("{desc} cannot be resolved: {why}"), "use a uid from 1 to 4294967295 in USER")
        }
        (_, Fact::Broken(why)) => r.error(
            NONROOT,
            format!("{desc} cannot be resolved: {why}, so containers cannot start as this user"),
            "add the user to /etc/passwd in the build image (e.g. with useradd), or use a numeric USER",
        ),
    }
}

/// `BUILD-USER-HOME-WRITABLE`: the home directory exists and the user can write to it.
pub(crate) fn build_home_writable(s: &Subject<'_>, r: &mut Report) {
    let desc = s.describe_user();
    let what = format!("whether the home directory of {desc} exists and is writable");
    if s.is_windows() {
        r.not_verified(HOME_WRITABLE, &what, WINDOWS_NOT_VERIFIED, "check the account's profile directory by hand");
        return;
    }
    let Some(fs) = s.rootfs else {
        r.not_verified(
            HOME_WRITABLE,
            &what,
            "the directory's owner and mode are in the image layers (config-only mode; layer mode would decide this)",
            "run the check in layer mode (with the image layers)",
        );
        return;
    };
    let uid = match &s.user.uid {
        Fact::Known(uid) => *uid,
        Fact::NotVerified(why) => return r.not_verified(HOME_WRITABLE, &what, why, LAYER_MODE_FIX),
        Fact::Broken(why) => {
            let why = format!("{desc} cannot be resolved ({why})");
            return r.not_verified(HOME_WRITABLE, &what, &why, "fix USER first (see BUILD-USER-NONROOT)");
        }
    };
    let gid = s.user.gid.known().map(|g| g.value);
    let owner = match gid {
        Some(gid) => format!("{uid}:{gid}"),
        None => uid.to_string(),
    };
    let home = match &s.user.home {
        Fact::Known(home) => home,
        Fact::NotVerified(why) => return r.not_verified(HOME_WRITABLE, &what, why, LAYER_MODE_FIX),
        Fact::Broken(why) => {
            return r.error(
                HOME_WRITABLE,
                format!("{desc} has no usable home directory: {why}"),
                format!(
                    "add an /etc/passwd entry for the user with a home directory it owns, or set ENV HOME to a directory owned by {owner}"
                ),
            );
        }
    };
    let source = if home.from_env { "HOME in Env" } else { "/etc/passwd" };
    let p = &home.path;
    if !p.starts_with('/') {
        return r.error(
            HOME_WRITABLE,
            format!("home directory '{p}' (from {source}) is not an absolute path"),
            format!("set an absolute home directory owned by {owner}"),
        );
    }
    let create_fix =
        format!("create {p} in the build image owned by {owner} (e.g. RUN mkdir -p {p} && chown {owner} {p})");
    match fs.directory(p) {
        Err(e) => {
            r.error(HOME_WRITABLE, format!("home directory '{p}' (from {source}) cannot be resolved: {e}"), create_fix)
        }
        Ok(None) => r.error(
            HOME_WRITABLE,
            format!("home directory '{p}' (from {source}) does not exist in the image (or is not a directory)"),
            create_fix,
        ),
        Ok(Some(dir)) => {
            let m = dir.mode;
            let writable = uid == 0
                || (dir.uid == u64::from(uid) && m & 0o200 != 0)
                || (gid.is_some_and(|g| dir.gid == u64::from(g)) && m & 0o020 != 0)
                || m & 0o002 != 0;
            if writable {
                return;
            }
            let resolved = if dir.path == *p { String::new() } else { format!(", which resolves to '{}'", dir.path) };
            let implicit = if dir.implicit { " (no layer lists it, so it gets runtime defaults)" } else { "" };
            let who = match gid {
                Some(g) => format!("uid {uid} (gid {g})"),
                None => format!("uid {uid}"),
            };
            r.error(
                HOME_WRITABLE,
                format!(
                    "home directory '{p}' (from {source}{resolved}) is owned by {}:{} with mode {m:04o}{implicit}, so {who} cannot write to it",
                    dir.uid, dir.gid
                ),
                format!("chown {owner} {} in the build image (or make it writable for the user's group)", dir.path),
            );
        }
    }
}

/// `BUILD-ENV-CNB_USER_ID`: present, an integer, and the uid of `User`.
pub(crate) fn build_cnb_user_id(s: &Subject<'_>, r: &mut Report) {
    let rule = "BUILD-ENV-CNB_USER_ID";
    let Some(value) = checked_id(s, r, rule, CNB_USER_ID, s.user.uid.known().copied()) else { return };
    let desc = s.describe_user();
    let what = format!("whether CNB_USER_ID ({value}) is the uid of {desc}");
    match &s.user.uid {
        Fact::Known(uid) if *uid == value => {}
        Fact::Known(uid) => r.error(
            rule,
            format!("CNB_USER_ID ({value}) does not match the uid of {desc} ({uid})"),
            format!("set ENV CNB_USER_ID={uid} in the build image, or change USER"),
        ),
        Fact::NotVerified(why) => r.not_verified(rule, &what, why, cnb_fix(s)),
        Fact::Broken(why) => r.not_verified(
            rule,
            &what,
            &format!("{desc} cannot be resolved ({why})"),
            "fix USER first (see BUILD-USER-NONROOT)",
        ),
    }
}

/// `BUILD-ENV-CNB_GROUP_ID`: present, an integer, and the effective gid of `User` (see the
/// crate docs, open point 9).
pub(crate) fn build_cnb_group_id(s: &Subject<'_>, r: &mut Report) {
    let rule = "BUILD-ENV-CNB_GROUP_ID";
    let Some(value) = checked_id(s, r, rule, CNB_GROUP_ID, s.user.gid.known().map(|g| g.value)) else { return };
    let desc = s.describe_user();
    let what = format!("whether CNB_GROUP_ID ({value}) is the gid of {desc}");
    match &s.user.gid {
        Fact::Known(Gid { value: gid, .. }) if *gid == value => {}
        Fact::Known(Gid { value: gid, origin }) => {
            let set = format!("set ENV CNB_GROUP_ID={gid} in the build image");
            let (message, fix) = match origin {
                GidOrigin::Explicit => (
                    format!("CNB_GROUP_ID ({value}) does not match the group of {desc} ({gid})"),
                    format!("{set}, or change the group in USER"),
                ),
                GidOrigin::Passwd => (
                    format!(
                        "CNB_GROUP_ID ({value}) does not match the primary gid of {desc} ({gid}, from /etc/passwd)"
                    ),
                    format!("{set}, or change USER"),
                ),
                GidOrigin::NoPasswdEntry => {
                    let uid = s.user.uid.known().copied().unwrap_or_default();
                    (
                        format!(
                            "CNB_GROUP_ID ({value}) does not match the gid of {desc} ({gid}: uid {uid} has no /etc/passwd entry, so the runtime uses gid 0)"
                        ),
                        format!(
                            "set USER {uid}:{value} in the build image, or add an /etc/passwd entry for uid {uid} with gid {value}"
                        ),
                    )
                }
                GidOrigin::Root => (
                    format!("CNB_GROUP_ID ({value}) does not match the gid of {desc} ({gid})"),
                    "set USER to the non-root user and group that CNB_USER_ID and CNB_GROUP_ID name".to_owned(),
                ),
            };
            r.error(rule, message, fix);
        }
        Fact::NotVerified(why) => r.not_verified(rule, &what, why, cnb_fix(s)),
        Fact::Broken(why) if s.user.spec.group.is_none() || s.user.uid.known().is_none() => r.not_verified(
            rule,
            &what,
            &format!("{desc} cannot be resolved ({why})"),
            "fix USER first (see BUILD-USER-NONROOT)",
        ),
        Fact::Broken(why) => r.error(
            rule,
            format!("the group of {desc} cannot be resolved: {why}"),
            "add the group to /etc/group in the build image, or use a numeric gid in USER",
        ),
    }
}

/// Pack's presence and integer checks; `None` (after reporting) when the value is unusable, or
/// on Windows after noting that the SID comparison cannot be made.
fn checked_id(s: &Subject<'_>, r: &mut Report, rule: &'static str, var: IdVar, expected: Option<u32>) -> Option<u32> {
    match cnb_id(s.facts, &s.env, var, expected) {
        Err(problem) => {
            r.error(rule, problem.message, problem.fix);
            None
        }
        Ok(value) if s.is_windows() => {
            let what = format!("whether {} ({value}) is the SID of {}", var.key, s.describe_user());
            r.not_verified(rule, &what, WINDOWS_NOT_VERIFIED, "check by hand that it matches the account in USER");
            None
        }
        Ok(value) => Some(value),
    }
}

fn cnb_fix(s: &Subject<'_>) -> &'static str {
    if s.rootfs.is_some() {
        "use a numeric USER (uid:gid) that matches CNB_USER_ID and CNB_GROUP_ID"
    } else {
        LAYER_MODE_FIX
    }
}

/// `RUN-USER-ROOT` (advisory): the run image user resolves to root.
pub(crate) fn run_user_root(s: &Subject<'_>, r: &mut Report) {
    let fix = "set USER in the run image to a non-root user, e.g. USER 1001:1000 (created in /etc/passwd)";
    if s.is_windows() {
        if let Some(problem) = windows_admin(&s.facts.user) {
            r.warn(RUN_ROOT, problem, "set USER ContainerUser (or another non-administrator account) in the run image");
        }
        return;
    }
    let desc = s.describe_user();
    match &s.user.uid {
        Fact::Known(0) => r.warn(
            RUN_ROOT,
            format!("{desc} is root (uid 0): app images would run as root, and the extender fails on a root run image"),
            fix,
        ),
        Fact::Known(_) => {}
        Fact::NotVerified(why) => r.not_verified(RUN_ROOT, &format!("whether {desc} is root"), why, LAYER_MODE_FIX),
        Fact::Broken(why) => r.not_verified(
            RUN_ROOT,
            &format!("whether {desc} is root"),
            &format!("it cannot be resolved ({why})"),
            "fix USER first (see RUN-USER-EXISTS)",
        ),
    }
}

/// `RUN-USER-EXISTS` (advisory): a named run image user has a passwd line, so app containers can
/// start.
pub(crate) fn run_user_exists(s: &Subject<'_>, r: &mut Report) {
    if s.is_windows() {
        return;
    }
    let desc = s.describe_user();
    match &s.user.uid {
        Fact::Known(_) => {}
        Fact::NotVerified(why) => {
            r.not_verified(RUN_EXISTS, &format!("whether {desc} exists in the run image"), why, LAYER_MODE_FIX)
        }
        Fact::Broken(why) => r.warn(
            RUN_EXISTS,
            format!("{desc} cannot be resolved: {why}, so app containers cannot start as this user"),
            "add the user to /etc/passwd in the run image (e.g. with useradd), or use a numeric USER",
        ),
    }
}

/// The build image user as `(uid, gid)` facts: `CNB_USER_ID`/`CNB_GROUP_ID` when usable (the
/// ids lifecycle runs the build as), else what `User` resolves to.
fn build_ids(build: &Subject<'_>) -> (Fact<u32>, Fact<u32>) {
    let pick = |var: IdVar, resolved: Fact<u32>| match cnb_id(build.facts, &build.env, var, None) {
        Ok(v) => Fact::Known(v),
        Err(_) => resolved,
    };
    let gid = match &build.user.gid {
        Fact::Known(g) => Fact::Known(g.value),
        Fact::NotVerified(w) => Fact::NotVerified(w.clone()),
        Fact::Broken(w) => Fact::Broken(w.clone()),
    };
    (pick(CNB_USER_ID, build.user.uid.clone()), pick(CNB_GROUP_ID, gid))
}

/// `RUN-USER-DIFFERENT` (Platform API 0.7+) or `LEGACY-RUN-USER-SAME` (before 0.7).
pub(crate) fn pair_users(build: &Subject<'_>, run: &Subject<'_>, r: &mut Report, opts: &Options) {
    let same_required = opts.platform_api < PlatformApi::RUN_USER_DIFFERENT;
    let rule = if same_required { RUN_SAME } else { RUN_DIFFERENT };
    let desc = run.describe_user();
    let what = if same_required {
        format!("whether {desc} has the build image user's uid and gid")
    } else {
        format!("whether {desc} differs from the build image user")
    };
    if build.is_windows() || run.is_windows() {
        return r.not_verified(rule, &what, WINDOWS_NOT_VERIFIED, "compare the two images' accounts by hand");
    }
    let (build_uid, build_gid) = build_ids(build);
    let uids = match (&build_uid, &run.user.uid) {
        (Fact::Known(b), Fact::Known(u)) => (*b, *u),
        (Fact::Known(_), Fact::NotVerified(why) | Fact::Broken(why)) => {
            return r.not_verified(rule, &what, why, LAYER_MODE_FIX);
        }
        (Fact::NotVerified(why) | Fact::Broken(why), _) => {
            let why = format!("the build image user is not known ({why})");
            return r.not_verified(rule, &what, &why, "set a numeric CNB_USER_ID in the build image");
        }
    };
    if !same_required {
        if uids.0 == uids.1 {
            r.warn(
                rule,
                format!("{desc} has uid {}, the same as the build image user", uids.1),
                "use a different user in the run image than in the build image (e.g. build 1000, run 1001)",
            );
        }
        return;
    }
    let gids = match (&build_gid, &run.user.gid) {
        (Fact::Known(b), Fact::Known(g)) => (*b, g.value),
        (_, Fact::NotVerified(why) | Fact::Broken(why)) | (Fact::NotVerified(why) | Fact::Broken(why), _) => {
            return r.not_verified(rule, &what, why, LAYER_MODE_FIX);
        }
    };
    if uids.0 != uids.1 || gids.0 != gids.1 {
        r.error(
            rule,
            format!(
                "{desc} is {}:{}, but Platform API {} requires the build image user ({}:{})",
                uids.1, gids.1, opts.platform_api, uids.0, gids.0
            ),
            format!("set USER {}:{} in the run image, or validate for Platform API 0.7 or newer", uids.0, gids.0),
        );
    }
}
