//! Legacy stack rules (the stack-era rules of Platform API ≤ 0.11, kept as SHOULDs since 0.12)
//! and pack's `[stack].id` checks.
//!
//! Levels: up to Platform API 0.11 these rules are MUSTs (errors); from 0.12 the spec keeps
//! the stack labels and `CNB_STACK_ID` only as SHOULDs, for older platforms and buildpacks
//! (warnings). The rules a stack-only buildpack depends on — a missing stack id label, the mixin
//! labels and names, `CNB_STACK_ID` differing from the stack id, and the pairing of the stack id
//! and mixins of the build image with every run image — are errors again when a buildpack on
//! the builder has `[[stacks]]` and no `[[targets]]` ([`Options::legacy_stacks_required`],
//! [`legacy_level`]), because such a buildpack fails detection without a matching stack. The
//! others follow the Platform API only ([`version_level`]): a stack id with characters outside
//! the recommended set is a warning from 0.12 on (pack and the lifecycle compare stack ids as
//! plain strings). Exceptions:
//!
//! * a build image without `CNB_STACK_ID` is always a warning: pack never reads it, and the
//!   lifecycle takes the stack id from the label;
//! * pack's own `stack '<cfg>' from builder config is incompatible with stack '<label>' from …`
//!   is always an error (it only applies when `[stack].id` is set), with pack's wording;
//! * an `io.buildpacks.stack.mixins` label on the **build** image that is not a JSON array of
//!   strings is always an error, because pack reads that label and fails on it.
//!
//! Mixins "same set" vs superset (open point 6): like pack, the run image must carry every
//! non-stage-specific mixin of the build image (run ⊇ build); extra mixins on the run image are
//! reported as `Info` (the spec's "same set" wording) rather than rejected, since pack and
//! lifecycle accept them and requiring equality would reject builders pack creates.
//! A missing mixins label counts as `[]` (pack does the same); `null` too.

use std::collections::BTreeSet;

use super::{Subject, is_valid_id, legacy_level, quoted_list, targets_era, version_level};
use crate::facts::{ImageFacts, Options};
use crate::finding::{Level, Report, Role};

const STACK_ID: &str = "io.buildpacks.stack.id";
const MIXINS: &str = "io.buildpacks.stack.mixins";
const DESCRIPTIVE: [&str; 7] = [
    "io.buildpacks.stack.maintainer",
    "io.buildpacks.stack.homepage",
    "io.buildpacks.stack.distro.name",
    "io.buildpacks.stack.distro.version",
    "io.buildpacks.stack.released",
    "io.buildpacks.stack.description",
    "io.buildpacks.stack.metadata",
];
const PAIR_STACK_ID: &str = "LEGACY-PAIR-STACK-ID";
const STACKS_ONLY: &str = " (only buildpacks with [[stacks]] and no [[targets]] need it)";

/// Pushes a legacy finding at `level`; warnings say who needs the fix.
fn push(r: &mut Report, level: Level, rule: &'static str, message: String, fix: String) {
    let fix = if level == Level::Warning { format!("{fix}{STACKS_ONLY}") } else { fix };
    r.push(rule, level, message, fix);
}

/// The mixins label as a list: missing or `null` is empty.
fn mixins(facts: &ImageFacts) -> Result<Vec<String>, String> {
    match facts.label(MIXINS) {
        None => Ok(Vec::new()),
        Some(raw) => {
            serde_json::from_str::<Option<Vec<String>>>(raw).map(Option::unwrap_or_default).map_err(|e| e.to_string())
        }
    }
}

/// The single-image legacy rules: stack id label, `CNB_STACK_ID`, mixins label and names, and
/// (Platform API ≤ 0.11) the descriptive `io.buildpacks.stack.*` labels.
pub(crate) fn image(s: &Subject<'_>, r: &mut Report, opts: &Options) {
    let f = s.facts;
    let label = f.non_empty_label(STACK_ID);
    match label {
        // With [stack].id set, pack's config check (config_stack_id) reports the missing label.
        None if opts.stack_id().is_none() => push(
            r,
            legacy_level(opts),
            "LEGACY-LABEL-STACK-ID",
            format!("label '{STACK_ID}' is not set"),
            format!("add LABEL {STACK_ID}=<stack id> to the {}", s.role),
        ),
        Some(id) if !is_valid_id(id) => push(
            r,
            version_level(opts),
            "LEGACY-LABEL-STACK-ID",
            format!("label '{STACK_ID}' value '{id}' has characters other than letters, digits, '.', '/' and '-'"),
            format!("set LABEL {STACK_ID} to an id made of letters, digits, '.', '/' and '-'"),
        ),
        _ => {}
    }

    if s.role == Role::Build {
        let expected = label.or(opts.stack_id());
        match (s.env.get("CNB_STACK_ID"), expected) {
            (None, _) => push(
                r,
                Level::Warning,
                "LEGACY-BUILD-ENV-CNB_STACK_ID",
                "CNB_STACK_ID is not set in Env".to_owned(),
                format!("add ENV CNB_STACK_ID={} to the build image", expected.unwrap_or("<stack id>")),
            ),
            (Some(env), Some(id)) if env != id => push(
                r,
                legacy_level(opts),
                "LEGACY-BUILD-ENV-CNB_STACK_ID",
                format!("CNB_STACK_ID ('{env}') does not match the stack id '{id}'"),
                format!("set ENV CNB_STACK_ID={id} in the build image"),
            ),
            _ => {}
        }
    }

    match mixins(f) {
        Err(e) => {
            let message = format!("label '{MIXINS}' is not a JSON array of strings ({e})");
            let fix = format!("set LABEL {MIXINS} to a JSON array such as [\"curl\",\"build:git\"], or [] for none");
            if s.role == Role::Build {
                r.error("LEGACY-LABEL-MIXINS", message, fix);
            } else {
                push(r, legacy_level(opts), "LEGACY-LABEL-MIXINS", message, fix);
            }
        }
        Ok(list) => mixin_names(s, r, opts, &list),
    }

    if !targets_era(opts) {
        let missing: Vec<&str> = DESCRIPTIVE.iter().copied().filter(|k| f.non_empty_label(k).is_none()).collect();
        if !missing.is_empty() {
            r.warn(
                "LEGACY-LABEL-STACK-DESCRIPTIVE",
                format!("labels not set: {}", quoted_list(missing.iter().copied())),
                format!("add these labels to the {} (Platform API 0.5–0.11 asks for them)", s.role),
            );
        }
    }
}

/// `LEGACY-MIXIN-NAME`: `:` only in a `build:`/`run:` prefix, and no mixin of the other stage.
fn mixin_names(s: &Subject<'_>, r: &mut Report, opts: &Options, list: &[String]) {
    let rule = "LEGACY-MIXIN-NAME";
    let wrong_stage = if s.role == Role::Build { "run" } else { "build" };
    for mixin in list {
        let (stage, name) = match mixin.split_once(':') {
            Some((stage, name)) => (Some(stage), name),
            None => (None, mixin.as_str()),
        };
        if name.is_empty() || name.contains(':') || stage.is_some_and(|st| st != "build" && st != "run") {
            push(
                r,
                legacy_level(opts),
                rule,
                format!("mixin '{mixin}' is not a name with an optional 'build:' or 'run:' prefix"),
                format!("rename the mixin in label {MIXINS}"),
            );
        } else if stage == Some(wrong_stage) {
            push(
                r,
                legacy_level(opts),
                rule,
                format!("the {} carries the {wrong_stage}-only mixin '{mixin}'", s.role),
                format!("remove '{mixin}' from label {MIXINS} of the {}", s.role),
            );
        }
    }
}

/// pack's check of an image's stack label against builder.toml's `[stack].id` (always an error,
/// with pack's wording).
pub(crate) fn config_stack_id(s: &Subject<'_>, r: &mut Report, opts: &Options) {
    let Some(cfg) = opts.stack_id() else { return };
    let label = s.facts.label(STACK_ID).unwrap_or_default();
    if label == cfg {
        return;
    }
    let message = match s.role {
        Role::Build => {
            format!("stack '{cfg}' from builder config is incompatible with stack '{label}' from build image")
        }
        Role::Run | Role::Mirror => format!(
            "stack '{cfg}' from builder config is incompatible with stack '{label}' from run image '{}'",
            s.facts.name
        ),
    };
    let fix = if label.is_empty() {
        format!(
            "use a {} labelled {STACK_ID}={cfg}, or remove [stack].id from builder.toml if no buildpack needs stacks",
            s.role
        )
    } else {
        format!("set [stack].id = \"{label}\" in builder.toml, or use a {} whose {STACK_ID} is '{cfg}'", s.role)
    };
    r.error(PAIR_STACK_ID, message, fix);
}

/// `LEGACY-PAIR-STACK-ID` (labels) and `LEGACY-PAIR-MIXINS` for a run image or mirror.
pub(crate) fn pair(build: &Subject<'_>, other: &Subject<'_>, r: &mut Report, opts: &Options) {
    stack_ids_pair(build, other, r, opts);
    mixins_pair(build, other, r, opts);
}

/// `LEGACY-PAIR-STACK-ID`: both stack labels, when set, are equal. With `[stack].id` set,
/// pack's config check ([`config_stack_id`]) already compares every image with it.
fn stack_ids_pair(build: &Subject<'_>, other: &Subject<'_>, r: &mut Report, opts: &Options) {
    let (b, o) = (build.facts, other.facts);
    if opts.stack_id().is_some() {
        return;
    }
    let (Some(bid), Some(oid)) = (b.non_empty_label(STACK_ID), o.non_empty_label(STACK_ID)) else { return };
    if bid != oid {
        push(
            r,
            legacy_level(opts),
            PAIR_STACK_ID,
            format!("stack id '{oid}' does not match the build image '{}', which has '{bid}'", b.name),
            format!("use a {} of stack '{bid}'", other.role),
        );
    }
}

/// `LEGACY-PAIR-MIXINS`: the other image carries every unstaged mixin of the build image.
fn mixins_pair(build: &Subject<'_>, other: &Subject<'_>, r: &mut Report, opts: &Options) {
    let b = build.facts;
    let (Ok(bm), Ok(om)) = (mixins(b), mixins(other.facts)) else { return };
    let unstaged =
        |list: &[String]| -> BTreeSet<String> { list.iter().filter(|m| !m.contains(':')).cloned().collect() };
    let (bset, oset) = (unstaged(&bm), unstaged(&om));
    let missing: Vec<&str> = bset.difference(&oset).map(String::as_str).collect();
    if !missing.is_empty() {
        push(
            r,
            legacy_level(opts),
            "LEGACY-PAIR-MIXINS",
            format!("the {} lacks mixins of the build image '{}': {}", other.role, b.name, quoted_list(missing)),
            format!("add these mixins to the {} (label {MIXINS})", other.role),
        );
    }
    let extra: Vec<&str> = oset.difference(&bset).map(String::as_str).collect();
    if !extra.is_empty() {
        r.info(
            "LEGACY-PAIR-MIXINS",
            format!(
                "the {} has mixins the build image '{}' lacks: {} (the spec says the same set; cnbx, like pack, accepts a superset)",
                other.role,
                b.name,
                quoted_list(extra)
            ),
            "add them to the build image (or remove them from this image) for an exact match",
        );
    }
}
