//! Resolving `config.User` to a uid, a gid and a home directory (OCI `config.User` semantics).
//!
//! 1. An empty `User` runs as root (uid 0).
//! 2. `User` is split on the first `:` into a user part and an optional group part
//!    (`user`, `uid`, `user:group`, `uid:gid`, `uid:group`, `user:gid`).
//! 3. A user part of digits only is the uid; `root` is uid 0; other names need `/etc/passwd`.
//! 4. The gid is the group part if there is one (digits, `root`, or a name looked up in
//!    `/etc/group`), else field 4 of the user's passwd line, else 0 when a numeric uid has no
//!    passwd line (what container runtimes do). See the crate docs for why `CNB_GROUP_ID` is
//!    compared with this *effective* gid (open point 9).
//! 5. The home directory is `HOME` from `Env` if set, else field 6 of the passwd line. A user
//!    without a passwd line gets `/` from the runtime, which the spec counts as an error.
//!
//! Each result is a [`Fact`]: known, not verified (config-only mode, or a file layer mode could
//! not read), or broken (the image itself cannot resolve it, e.g. a name without a passwd line).

use crate::etc::{GroupEntry, PasswdEntry, parse_group, parse_passwd};
use crate::facts::{Env, ImageFacts};
use crate::rootfs::{FileState, GROUP, PASSWD, RootFs};

/// `config.User` split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserSpec {
    /// `User` verbatim.
    pub(crate) raw: String,
    /// The part before the first `:`.
    pub(crate) user: String,
    /// The part after the first `:`, if non-empty.
    pub(crate) group: Option<String>,
}

/// What the user part of `User` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UserPart<'a> {
    /// Empty or `root`.
    Root,
    /// Digits only.
    Uid(u32),
    /// Digits only, but not a valid uid (too large).
    BadUid,
    /// A name other than `root`.
    Name(&'a str),
}

impl UserSpec {
    pub(crate) fn parse(raw: &str) -> Self {
        let (user, group) = match raw.split_once(':') {
            Some((u, g)) => (u, Some(g).filter(|g| !g.is_empty())),
            None => (raw, None),
        };
        Self { raw: raw.to_owned(), user: user.to_owned(), group: group.map(str::to_owned) }
    }

    pub(crate) fn user_part(&self) -> UserPart<'_> {
        classify(&self.user, UserPart::Root, UserPart::Uid, UserPart::BadUid, UserPart::Name)
    }

    /// `User 'x'`, or `the default user (root)` when `User` is empty.
    pub(crate) fn describe(&self) -> String {
        if self.raw.is_empty() { "the default user (root)".to_owned() } else { format!("User '{}'", self.raw) }
    }
}

fn classify<'a, T>(s: &'a str, root: T, id: impl Fn(u32) -> T, bad: T, name: impl Fn(&'a str) -> T) -> T {
    if s.is_empty() || s == "root" {
        root
    } else if s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().map(id).unwrap_or(bad)
    } else {
        name(s)
    }
}

/// A resolved value, or why it is not known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fact<T> {
    /// Decided.
    Known(T),
    /// Not decidable with the inputs given; the reason says what is missing.
    NotVerified(String),
    /// The image itself cannot resolve it; the reason says why.
    Broken(String),
}

impl<T> Fact<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Fact<U> {
        self.and_then(|v| Fact::Known(f(v)))
    }

    fn and_then<U>(self, f: impl FnOnce(T) -> Fact<U>) -> Fact<U> {
        match self {
            Fact::Known(v) => f(v),
            Fact::NotVerified(r) => Fact::NotVerified(r),
            Fact::Broken(r) => Fact::Broken(r),
        }
    }

    pub(crate) fn known(&self) -> Option<&T> {
        match self {
            Fact::Known(v) => Some(v),
            _ => None,
        }
    }
}

/// Where the effective gid comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GidOrigin {
    /// The group part of `User`.
    Explicit,
    /// Field 4 of the user's passwd line.
    Passwd,
    /// The uid has no passwd line, so the runtime uses gid 0.
    NoPasswdEntry,
    /// Root without a readable passwd line: gid 0 by convention.
    Root,
}

/// The effective gid of `User`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gid {
    pub(crate) value: u32,
    pub(crate) origin: GidOrigin,
}

/// The home directory of `User`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Home {
    pub(crate) path: String,
    /// From `HOME` in `Env` rather than passwd.
    pub(crate) from_env: bool,
}

/// `User` resolved as far as the inputs allow.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedUser {
    pub(crate) spec: UserSpec,
    pub(crate) uid: Fact<u32>,
    pub(crate) gid: Fact<Gid>,
    pub(crate) home: Fact<Home>,
}

/// A database file (`/etc/passwd`, `/etc/group`) as far as it could be read.
enum Db<T> {
    ConfigOnly,
    Read(Vec<T>),
    Missing,
    Broken(String),
    NotRetained(&'static str),
}

impl<T> Db<T> {
    fn load(rootfs: Option<&RootFs>, path: &str, parse: fn(&[u8]) -> Vec<T>) -> Self {
        match rootfs.map(|fs| fs.file(path)) {
            None => Db::ConfigOnly,
            Some(FileState::Present { content, .. }) => Db::Read(parse(content)),
            Some(FileState::Missing) => Db::Missing,
            Some(FileState::SymlinkLoop) => Db::Broken(format!("{path} is a symlink loop")),
            Some(FileState::NotRetained { reason }) => Db::NotRetained(reason),
        }
    }

    /// The first entry matching `pred`; a name (`what`) that is not found is broken.
    fn find(&self, path: &str, what: &str, pred: impl Fn(&T) -> bool) -> Fact<&T> {
        match self.find_optional(path, pred) {
            Fact::Known(Some(e)) => Fact::Known(e),
            Fact::Known(None) => Fact::Broken(if matches!(self, Db::Missing) {
                format!("the image has no {path}")
            } else {
                format!("{path} has no entry named '{what}'")
            }),
            Fact::NotVerified(r) => Fact::NotVerified(r),
            Fact::Broken(r) => Fact::Broken(r),
        }
    }

    /// The first entry matching `pred`, `Known(None)` if there is none (or no file).
    fn find_optional(&self, path: &str, pred: impl Fn(&T) -> bool) -> Fact<Option<&T>> {
        match self {
            Db::ConfigOnly => Fact::NotVerified(format!(
                "{path} from the image layers is needed (config-only mode; layer mode would decide this)"
            )),
            Db::Read(entries) => Fact::Known(entries.iter().find(|e| pred(e))),
            Db::Missing => Fact::Known(None),
            Db::Broken(r) => Fact::Broken(r.clone()),
            Db::NotRetained(reason) => Fact::NotVerified(format!("{path} could not be read in layer mode: {reason}")),
        }
    }
}

/// Why nothing can be resolved for a Windows account.
pub(crate) const WINDOWS_NOT_VERIFIED: &str = "Windows account names cannot be mapped to SIDs from the image";

/// Resolves `facts.user` (with `rootfs` in layer mode).
pub(crate) fn resolve(facts: &ImageFacts, env: &Env, rootfs: Option<&RootFs>) -> ResolvedUser {
    let spec = UserSpec::parse(&facts.user);
    let env_home = env.get("HOME").filter(|h| !h.is_empty()).map(|h| Home { path: h.to_owned(), from_env: true });
    if facts.is_windows() {
        let home = env_home.map_or_else(|| Fact::NotVerified(WINDOWS_NOT_VERIFIED.to_owned()), Fact::Known);
        let uid = Fact::NotVerified(WINDOWS_NOT_VERIFIED.to_owned());
        let gid = Fact::NotVerified(WINDOWS_NOT_VERIFIED.to_owned());
        return ResolvedUser { spec, uid, gid, home };
    }

    let passwd = Db::load(rootfs, PASSWD, parse_passwd);
    // The user's passwd line: Known(None) when a numeric uid (or root) has none.
    let (uid, entry): (Fact<u32>, Fact<Option<&PasswdEntry>>) = match spec.user_part() {
        UserPart::Root => (Fact::Known(0), passwd.find_optional(PASSWD, |e| e.uid == 0)),
        UserPart::Uid(uid) => (Fact::Known(uid), passwd.find_optional(PASSWD, |e| e.uid == uid)),
        UserPart::BadUid => {
            let why = format!("'{}' is not a valid uid (larger than 4294967295)", spec.user);
            (Fact::Broken(why.clone()), Fact::Broken(why))
        }
        UserPart::Name(name) => {
            let e = passwd.find(PASSWD, name, |e| e.name == name);
            (e.clone().map(|e| e.uid), e.map(Some))
        }
    };
    let is_root = uid == Fact::Known(0);

    let gid = match spec.group.as_deref() {
        Some(group) => {
            let groups = || Db::load(rootfs, GROUP, parse_group);
            let explicit = |value| Fact::Known(Gid { value, origin: GidOrigin::Explicit });
            classify(
                group,
                explicit(0),
                explicit,
                Fact::Broken(format!("'{group}' is not a valid gid (larger than 4294967295)")),
                |name| {
                    groups()
                        .find(GROUP, name, |g: &GroupEntry| g.name == name)
                        .map(|g| Gid { value: g.gid, origin: GidOrigin::Explicit })
                },
            )
        }
        None => match &entry {
            Fact::Known(Some(e)) => Fact::Known(Gid { value: e.gid, origin: GidOrigin::Passwd }),
            Fact::Known(None) if is_root => Fact::Known(Gid { value: 0, origin: GidOrigin::Root }),
            Fact::Known(None) => Fact::Known(Gid { value: 0, origin: GidOrigin::NoPasswdEntry }),
            Fact::NotVerified(_) if is_root => Fact::Known(Gid { value: 0, origin: GidOrigin::Root }),
            Fact::NotVerified(r) => Fact::NotVerified(r.clone()),
            Fact::Broken(r) => Fact::Broken(r.clone()),
        },
    };

    let home = match (env_home, &entry) {
        (Some(home), _) => Fact::Known(home),
        (None, Fact::Known(Some(e))) if e.home.is_empty() => {
            Fact::Broken(format!("the /etc/passwd entry of '{}' has an empty home directory field", e.name))
        }
        (None, Fact::Known(Some(e))) => Fact::Known(Home { path: e.home.clone(), from_env: false }),
        (None, Fact::Known(None)) => Fact::Broken(format!(
            "uid {} has no /etc/passwd entry, so HOME falls back to '/'",
            uid.known().copied().unwrap_or_default()
        )),
        (None, Fact::NotVerified(r)) => Fact::NotVerified(r.clone()),
        (None, Fact::Broken(r)) => Fact::Broken(r.clone()),
    };

    ResolvedUser { spec, uid, gid, home }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_spec_forms() {
        let s = UserSpec::parse("cnb:staff");
        assert_eq!((s.user.as_str(), s.group.as_deref()), ("cnb", Some("staff")));
        assert_eq!(UserSpec::parse("1000:").group, None);
        assert_eq!(UserSpec::parse("").user_part(), UserPart::Root);
        assert_eq!(UserSpec::parse("root:1").user_part(), UserPart::Root);
        assert_eq!(UserSpec::parse("0").user_part(), UserPart::Uid(0));
        assert_eq!(UserSpec::parse("1000:1000").user_part(), UserPart::Uid(1000));
        assert_eq!(UserSpec::parse("99999999999").user_part(), UserPart::BadUid);
        assert_eq!(UserSpec::parse("cnb").user_part(), UserPart::Name("cnb"));
        assert_eq!(UserSpec::parse("").describe(), "the default user (root)");
    }

    #[test]
    fn config_only_numeric_user_and_group() {
        let facts = ImageFacts::new("i", "linux", "amd64").with_user("1000:1001");
        let r = resolve(&facts, &Env::default(), None);
        assert_eq!(r.uid, Fact::Known(1000));
        assert_eq!(r.gid, Fact::Known(Gid { value: 1001, origin: GidOrigin::Explicit }));
        assert!(matches!(r.home, Fact::NotVerified(_)));
    }

    #[test]
    fn config_only_name_is_not_verified() {
        let facts = ImageFacts::new("i", "linux", "amd64").with_user("cnb");
        let r = resolve(&facts, &Env::default(), None);
        assert!(matches!(r.uid, Fact::NotVerified(_)));
        assert!(matches!(r.gid, Fact::NotVerified(_)));
    }

    #[test]
    fn windows_is_never_resolved() {
        let facts = ImageFacts::new("i", "windows", "amd64").with_user("ContainerUser");
        let r = resolve(&facts, &Env::default(), None);
        assert_eq!(r.uid, Fact::NotVerified(WINDOWS_NOT_VERIFIED.to_owned()));
    }
}
