//! Run-image mirror selection (see docs/pack-compatibility.md, *Choosing a run image*).
//!
//! # Selection
//!
//! Candidates, in order: the user's mirrors for the run image (pack's configuration,
//! matched by exact string equality of the run image name, as pack does), the run image
//! itself, then the builder's mirrors. The *preferred registry* is the normalised registry of
//! the app image (pack uses the builder's registry instead when it builds into a Docker
//! daemon; a caller that wants that passes the builder's name as `app_image`).
//!
//! * [`resolve`] (no readability information): the first candidate on the preferred registry
//!   wins; if none is, the run image itself wins. This is the platform rule up to Platform
//!   API 0.11 and, for well-formed mirror lists, what lifecycle picks.
//! * [`resolve_with_readability`] (pack's client-side rule): the first *readable* candidate
//!   on the preferred registry wins; else the first readable candidate (which may be a user
//!   mirror: pack prefers a mirror it has seen over the run image); else, when nothing is
//!   readable, the run image. The check is lazy: it is asked only about the candidates the
//!   decision needs, and at most once per distinct name.
//!
//! # Registry comparison
//!
//! Registries are compared after [`ImageRef`] normalisation: no registry means
//! `index.docker.io`, `docker.io` ≡ `index.docker.io`, host names are compared
//! case-insensitively, ports are significant (`example.com:443` ≠ `example.com`), and bare
//! `localhost` is a registry (see [`crate::reference`]). `registry-1.docker.io` is a
//! registry of its own, as in pack. A candidate that is not a valid reference never matches
//! (it is listed with its error) and is not offered to the readability check.
//!
//! # Serialisation
//!
//! [`Resolution`] and [`RunImageRow`] serialise with **snake_case** field names, like pack's
//! `builder inspect --output json` (`run_images`, `user_configured`); enum values are
//! kebab-case (`user-configured`, `same-registry`).

use std::collections::HashMap;

use cnbx_model::RunImage;
use serde::Serialize;

use crate::reference::{ImageRef, RefError};

/// Where a candidate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// A mirror from the user's `config.toml`.
    UserConfigured,
    /// The builder's run image itself.
    RunImage,
    /// A mirror listed in the builder.
    BuilderMirror,
}

/// Why the chosen candidate won.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// It is the first (readable, if checked) candidate on the app image's registry.
    SameRegistry,
    /// No (readable, if checked) candidate is on the app image's registry: without a
    /// readability check the run image wins, with one the first readable candidate.
    NoCandidateOnRegistry,
    /// The readability check was used and no candidate is readable: the run image wins.
    NoneReadable,
}

/// One candidate considered by the resolver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// The name as written (in the builder or the user config).
    pub image: String,
    /// Where it came from.
    pub origin: Origin,
    /// Its normalised registry; `null` when the name is not a valid reference.
    pub registry: Option<String>,
    /// Why the name is not a valid reference, if it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether its registry equals the app image's registry.
    pub matched: bool,
    /// The readability check's answer; absent when it was not asked about this candidate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readable: Option<bool>,
    /// Whether this candidate is the one chosen.
    pub chosen: bool,
}

/// The chosen run image and how it was chosen, for messages and `--output json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolution {
    /// The chosen run image, as written.
    pub image: String,
    /// Where the chosen image came from.
    pub origin: Origin,
    /// Why it was chosen.
    pub reason: Reason,
    /// The app image, as given.
    pub app_image: String,
    /// The app image's normalised registry (the preferred registry).
    pub registry: String,
    /// Whether a readability check was used.
    pub readability_checked: bool,
    /// Every candidate, in order.
    pub candidates: Vec<Candidate>,
}

/// The normalised registry of an image name: `index.docker.io` when the name has none,
/// `docker.io` → `index.docker.io`, host lower-cased, port kept.
pub fn normalized_registry(name: &str) -> Result<String, RefError> {
    ImageRef::parse(name).map(|r| r.registry().to_owned())
}

/// The candidates in resolution order: user mirrors, the run image, builder mirrors.
pub fn candidates(run_image: &str, builder_mirrors: &[String], user_mirrors: &[String]) -> Vec<(Origin, String)> {
    let user = user_mirrors.iter().map(|m| (Origin::UserConfigured, m.clone()));
    let builder = builder_mirrors.iter().map(|m| (Origin::BuilderMirror, m.clone()));
    user.chain(std::iter::once((Origin::RunImage, run_image.to_owned()))).chain(builder).collect()
}

/// Chooses the run image for `app_image` without checking readability: the first candidate
/// on the app image's registry, else the run image. Fails only when `app_image` is not a
/// valid reference.
pub fn resolve(
    run_image: &str,
    builder_mirrors: &[String],
    user_mirrors: &[String],
    app_image: &str,
) -> Result<Resolution, RefError> {
    let r = Resolver::new(run_image, builder_mirrors, user_mirrors, app_image)?;
    let (index, reason) = match r.candidates.iter().position(|c| c.matched) {
        Some(i) => (i, Reason::SameRegistry),
        None => (r.run_image_index, Reason::NoCandidateOnRegistry),
    };
    Ok(r.finish(index, reason, false))
}

/// Chooses the run image for `app_image` as pack does, skipping candidates `readable` says
/// cannot be read: the first readable candidate on the app image's registry, else the first
/// readable candidate, else the run image. Fails only when `app_image` is not a valid
/// reference.
pub fn resolve_with_readability(
    run_image: &str,
    builder_mirrors: &[String],
    user_mirrors: &[String],
    app_image: &str,
    mut readable: impl FnMut(&str) -> bool,
) -> Result<Resolution, RefError> {
    let mut r = Resolver::new(run_image, builder_mirrors, user_mirrors, app_image)?;
    let mut answers: HashMap<String, bool> = HashMap::new();
    let mut check = |c: &mut Candidate| -> bool {
        if c.registry.is_none() {
            return false;
        }
        let answer = *answers.entry(c.image.clone()).or_insert_with(|| readable(&c.image));
        c.readable = Some(answer);
        answer
    };

    let mut chosen = None;
    for (i, c) in r.candidates.iter_mut().enumerate() {
        if c.matched && check(c) {
            chosen = Some((i, Reason::SameRegistry));
            break;
        }
    }
    if chosen.is_none() {
        for (i, c) in r.candidates.iter_mut().enumerate() {
            if check(c) {
                chosen = Some((i, Reason::NoCandidateOnRegistry));
                break;
            }
        }
    }
    let (index, reason) = chosen.unwrap_or((r.run_image_index, Reason::NoneReadable));
    Ok(r.finish(index, reason, true))
}

struct Resolver {
    app_image: String,
    registry: String,
    candidates: Vec<Candidate>,
    run_image_index: usize,
}

impl Resolver {
    fn new(
        run_image: &str,
        builder_mirrors: &[String],
        user_mirrors: &[String],
        app_image: &str,
    ) -> Result<Self, RefError> {
        let registry = normalized_registry(app_image)?;
        let candidates = candidates(run_image, builder_mirrors, user_mirrors)
            .into_iter()
            .map(|(origin, image)| {
                let (cand_registry, error) = match normalized_registry(&image) {
                    Ok(reg) => (Some(reg), None),
                    Err(e) => (None, Some(e.reason)),
                };
                Candidate {
                    matched: cand_registry.as_deref() == Some(registry.as_str()),
                    image,
                    origin,
                    registry: cand_registry,
                    error,
                    readable: None,
                    chosen: false,
                }
            })
            .collect();
        Ok(Self { app_image: app_image.to_owned(), registry, candidates, run_image_index: user_mirrors.len() })
    }

    fn finish(mut self, index: usize, reason: Reason, readability_checked: bool) -> Resolution {
        let (image, origin) = match self.candidates.get_mut(index) {
            Some(c) => {
                c.chosen = true;
                (c.image.clone(), c.origin)
            }
            // Unreachable: the run image is always a candidate.
            None => (String::new(), Origin::RunImage),
        };
        Resolution {
            image,
            origin,
            reason,
            app_image: self.app_image,
            registry: self.registry,
            readability_checked,
            candidates: self.candidates,
        }
    }
}

/// One row of `builder inspect`'s "Run Images" section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunImageRow {
    /// The image name, as written.
    pub name: String,
    /// Whether it is a mirror from the user's config (printed with `(user-configured)`).
    #[serde(skip_serializing_if = "is_false")]
    pub user_configured: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The rows of `builder inspect`'s "Run Images" section, in pack's order.
///
/// First the user-configured mirrors: for each user config entry (in file order) and each
/// builder run image whose name string-equals the entry's image, the entry's mirrors. Then
/// each builder run image (skipped when empty) followed by its mirrors. As in pack, a user
/// entry matching two builder entries is listed twice.
pub fn inspect_run_images(builder_run_images: &[RunImage], user_run_images: &[RunImage]) -> Vec<RunImageRow> {
    let mut rows = Vec::new();
    for user in user_run_images {
        for builder in builder_run_images {
            if user.image == builder.image {
                rows.extend(user.mirror_list().iter().map(|m| RunImageRow { name: m.clone(), user_configured: true }));
            }
        }
    }
    for builder in builder_run_images {
        if !builder.image.is_empty() {
            rows.push(RunImageRow { name: builder.image.clone(), user_configured: false });
        }
        rows.extend(builder.mirror_list().iter().map(|m| RunImageRow { name: m.clone(), user_configured: false }));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn normalized_registries() {
        let cases = [
            ("ubuntu", "index.docker.io"),
            ("paketo/run", "index.docker.io"),
            ("docker.io/paketo/run", "index.docker.io"),
            ("Docker.IO/paketo/run", "index.docker.io"),
            ("index.docker.io/paketo/run:1", "index.docker.io"),
            ("registry-1.docker.io/paketo/run", "registry-1.docker.io"),
            ("GCR.io/p/run", "gcr.io"),
            ("localhost/run", "localhost"),
            ("localhost:5000/run", "localhost:5000"),
            ("127.0.0.1:5000/run", "127.0.0.1:5000"),
            ("[::1]:5000/run", "[::1]:5000"),
            ("example.com:443/run", "example.com:443"),
        ];
        for (name, registry) in cases {
            assert_eq!(normalized_registry(name).expect(name), registry, "{name}");
        }
        assert!(normalized_registry("Bad/Name").is_err());
    }

    /// The builder used by the resolver table: a Docker Hub run image with mirrors on gcr.io,
    /// a local registry and a loopback address.
    fn builder_mirrors() -> Vec<String> {
        strings(&[
            "gcr.io/paketo/run:base",
            "localhost:5000/paketo/run",
            "127.0.0.1:5000/paketo/run",
            "registry.example.com:443/paketo/run",
        ])
    }

    #[test]
    fn resolver_table() {
        let digest = format!("sha256:{HEX}");
        let run = "paketo/run:base";
        let mirrors = builder_mirrors();
        // (app image, user mirrors, chosen, origin, reason)
        let cases: Vec<(String, Vec<String>, &str, Origin, Reason)> = vec![
            // Docker Hub app images, however written, pick the run image.
            ("my/app".into(), vec![], run, Origin::RunImage, Reason::SameRegistry),
            ("app:1".into(), vec![], run, Origin::RunImage, Reason::SameRegistry),
            ("docker.io/my/app".into(), vec![], run, Origin::RunImage, Reason::SameRegistry),
            ("index.docker.io/my/app".into(), vec![], run, Origin::RunImage, Reason::SameRegistry),
            (format!("my/app@{digest}"), vec![], run, Origin::RunImage, Reason::SameRegistry),
            // Other registries pick their mirror.
            ("gcr.io/team/app".into(), vec![], "gcr.io/paketo/run:base", Origin::BuilderMirror, Reason::SameRegistry),
            (
                "GCR.IO/team/app:v2".into(),
                vec![],
                "gcr.io/paketo/run:base",
                Origin::BuilderMirror,
                Reason::SameRegistry,
            ),
            (
                format!("gcr.io/team/app:v2@{digest}"),
                vec![],
                "gcr.io/paketo/run:base",
                Origin::BuilderMirror,
                Reason::SameRegistry,
            ),
            (
                "localhost:5000/app".into(),
                vec![],
                "localhost:5000/paketo/run",
                Origin::BuilderMirror,
                Reason::SameRegistry,
            ),
            (
                "127.0.0.1:5000/app:dev".into(),
                vec![],
                "127.0.0.1:5000/paketo/run",
                Origin::BuilderMirror,
                Reason::SameRegistry,
            ),
            (
                "registry.example.com:443/app".into(),
                vec![],
                "registry.example.com:443/paketo/run",
                Origin::BuilderMirror,
                Reason::SameRegistry,
            ),
            // Ports are significant; localhost without a port is its own registry.
            ("localhost:5001/app".into(), vec![], run, Origin::RunImage, Reason::NoCandidateOnRegistry),
            ("localhost/app".into(), vec![], run, Origin::RunImage, Reason::NoCandidateOnRegistry),
            ("registry.example.com/app".into(), vec![], run, Origin::RunImage, Reason::NoCandidateOnRegistry),
            // registry-1.docker.io is not Docker Hub's index.docker.io.
            ("registry-1.docker.io/my/app".into(), vec![], run, Origin::RunImage, Reason::NoCandidateOnRegistry),
            ("quay.io/my/app".into(), vec![], run, Origin::RunImage, Reason::NoCandidateOnRegistry),
            // User mirrors come first, on every registry they match.
            (
                "gcr.io/team/app".into(),
                strings(&["gcr.io/mine/run", "localhost:5000/mine/run"]),
                "gcr.io/mine/run",
                Origin::UserConfigured,
                Reason::SameRegistry,
            ),
            (
                "localhost:5000/app".into(),
                strings(&["gcr.io/mine/run", "localhost:5000/mine/run"]),
                "localhost:5000/mine/run",
                Origin::UserConfigured,
                Reason::SameRegistry,
            ),
            (
                "my/app".into(),
                strings(&["docker.io/mine/run"]),
                "docker.io/mine/run",
                Origin::UserConfigured,
                Reason::SameRegistry,
            ),
            // A user mirror elsewhere does not win without a registry match.
            (
                "quay.io/my/app".into(),
                strings(&["gcr.io/mine/run"]),
                run,
                Origin::RunImage,
                Reason::NoCandidateOnRegistry,
            ),
            // An invalid user mirror is skipped.
            (
                "gcr.io/team/app".into(),
                strings(&["gcr.io/Bad/Run"]),
                "gcr.io/paketo/run:base",
                Origin::BuilderMirror,
                Reason::SameRegistry,
            ),
        ];
        for (app, user, chosen, origin, reason) in &cases {
            let r = resolve(run, &mirrors, user, app).unwrap_or_else(|e| panic!("{app}: {e}"));
            assert_eq!(r.image, *chosen, "{app} {user:?}");
            assert_eq!(r.origin, *origin, "{app} {user:?}");
            assert_eq!(r.reason, *reason, "{app} {user:?}");
            assert!(!r.readability_checked);
            assert_eq!(r.candidates.len(), user.len() + 1 + mirrors.len());
            assert_eq!(r.candidates.iter().filter(|c| c.chosen).count(), 1);
            assert!(r.candidates.iter().all(|c| c.readable.is_none()));
        }
    }

    #[test]
    fn registry_of_app_image_may_be_uppercase_host() {
        let r = resolve("run", &strings(&["Example.COM/run"]), &[], "example.com/app").expect("valid");
        assert_eq!(r.image, "Example.COM/run");
        assert_eq!(r.registry, "example.com");
    }

    #[test]
    fn invalid_app_image_is_an_error() {
        let e = resolve("run", &[], &[], "My/App").expect_err("invalid");
        assert_eq!(e.reference, "My/App");
    }

    #[test]
    fn candidate_details() {
        let r = resolve("paketo/run", &strings(&["gcr.io/paketo/run"]), &strings(&["Bad/Mirror"]), "gcr.io/x/app")
            .expect("valid");
        let got: Vec<_> = r
            .candidates
            .iter()
            .map(|c| (c.image.as_str(), c.origin, c.registry.as_deref(), c.matched, c.chosen))
            .collect();
        assert_eq!(
            got,
            vec![
                ("Bad/Mirror", Origin::UserConfigured, None, false, false),
                ("paketo/run", Origin::RunImage, Some("index.docker.io"), false, false),
                ("gcr.io/paketo/run", Origin::BuilderMirror, Some("gcr.io"), true, true),
            ]
        );
        assert_eq!(r.candidates[0].error.as_deref(), Some("repository name must be lowercase"));
    }

    #[test]
    fn readability_skips_unreadable_candidates() {
        let run = "paketo/run";
        let mirrors = strings(&["gcr.io/paketo/run", "gcr.io/paketo/run2", "quay.io/paketo/run"]);
        let user = strings(&["gcr.io/mine/run"]);

        // The user's mirror on gcr.io is unreadable: the builder's readable gcr.io mirror wins.
        let unreadable = ["gcr.io/mine/run", "gcr.io/paketo/run"];
        let r = resolve_with_readability(run, &mirrors, &user, "gcr.io/x/app", |n| !unreadable.contains(&n))
            .expect("valid");
        assert_eq!(r.image, "gcr.io/paketo/run2");
        assert_eq!(r.origin, Origin::BuilderMirror);
        assert_eq!(r.reason, Reason::SameRegistry);
        assert!(r.readability_checked);
        let readable: Vec<_> = r.candidates.iter().map(|c| c.readable).collect();
        // Lazy: the run image (not on gcr.io) and the quay.io mirror were not asked about.
        assert_eq!(readable, vec![Some(false), None, Some(false), Some(true), None]);

        // Nothing readable on the registry: the first readable candidate, as in pack.
        let r = resolve_with_readability(run, &mirrors, &user, "gcr.io/x/app", |n| {
            n.starts_with("quay.io") || n == "paketo/run"
        })
        .expect("valid");
        assert_eq!(r.image, "paketo/run");
        assert_eq!(r.reason, Reason::NoCandidateOnRegistry);

        // No registry match and all readable: pack picks the first readable (a user mirror).
        let r = resolve_with_readability(run, &mirrors, &user, "ghcr.io/x/app", |_| true).expect("valid");
        assert_eq!(r.image, "gcr.io/mine/run");
        assert_eq!(r.origin, Origin::UserConfigured);
        assert_eq!(r.reason, Reason::NoCandidateOnRegistry);

        // Nothing readable at all: the run image.
        let r = resolve_with_readability(run, &mirrors, &user, "gcr.io/x/app", |_| false).expect("valid");
        assert_eq!(r.image, run);
        assert_eq!(r.origin, Origin::RunImage);
        assert_eq!(r.reason, Reason::NoneReadable);
        assert!(r.candidates[1].chosen);
        assert!(r.candidates.iter().all(|c| c.readable == Some(false)));
    }

    #[test]
    fn readability_is_asked_once_per_name_and_never_for_invalid_names() {
        let mut asked = Vec::new();
        let r = resolve_with_readability(
            "paketo/run",
            &strings(&["paketo/run", "Bad/Name"]),
            &strings(&["paketo/run"]),
            "gcr.io/app",
            |n| {
                asked.push(n.to_owned());
                false
            },
        )
        .expect("valid");
        assert_eq!(asked, vec!["paketo/run"]);
        assert_eq!(r.reason, Reason::NoneReadable);
        assert_eq!(r.candidates[3].readable, None);
    }

    #[test]
    fn resolution_json() {
        let r = resolve_with_readability(
            "paketo/run",
            &strings(&["gcr.io/paketo/run"]),
            &strings(&["Bad"]),
            "gcr.io/x/app",
            |_| true,
        )
        .expect("valid");
        let json = serde_json::to_value(&r).expect("serialisable");
        assert_eq!(
            json,
            serde_json::json!({
                "image": "gcr.io/paketo/run",
                "origin": "builder-mirror",
                "reason": "same-registry",
                "app_image": "gcr.io/x/app",
                "registry": "gcr.io",
                "readability_checked": true,
                "candidates": [
                    {
                        "image": "Bad",
                        "origin": "user-configured",
                        "registry": null,
                        "error": "repository name must be lowercase",
                        "matched": false,
                        "chosen": false
                    },
                    {
                        "image": "paketo/run",
                        "origin": "run-image",
                        "registry": "index.docker.io",
                        "matched": false,
                        "chosen": false
                    },
                    {
                        "image": "gcr.io/paketo/run",
                        "origin": "builder-mirror",
                        "registry": "gcr.io",
                        "matched": true,
                        "readable": true,
                        "chosen": true
                    }
                ]
            })
        );
    }

    #[test]
    fn candidate_order() {
        let c = candidates("run", &strings(&["b1", "b2"]), &strings(&["u1"]));
        assert_eq!(
            c,
            vec![
                (Origin::UserConfigured, "u1".to_owned()),
                (Origin::RunImage, "run".to_owned()),
                (Origin::BuilderMirror, "b1".to_owned()),
                (Origin::BuilderMirror, "b2".to_owned()),
            ]
        );
    }

    fn rows(r: &[RunImageRow]) -> Vec<(&str, bool)> {
        r.iter().map(|r| (r.name.as_str(), r.user_configured)).collect()
    }

    #[test]
    fn inspect_rows_single_image() {
        let builder = [RunImage::new("pack-test/run", ["pack-test/run-mirror"])];
        let user = [
            RunImage::new("other/run", ["x/ignored"]),
            RunImage::new("pack-test/run", ["some-registry.com/pack-test/run1"]),
        ];
        assert_eq!(
            rows(&inspect_run_images(&builder, &user)),
            vec![("some-registry.com/pack-test/run1", true), ("pack-test/run", false), ("pack-test/run-mirror", false),]
        );
        // Exact string match: `docker.io/pack-test/run` is not `pack-test/run` here.
        let user = [RunImage::new("docker.io/pack-test/run", ["m"])];
        assert_eq!(
            rows(&inspect_run_images(&builder, &user)),
            vec![("pack-test/run", false), ("pack-test/run-mirror", false)]
        );
    }

    #[test]
    fn inspect_rows_several_images() {
        let builder = [
            RunImage::new("a/run", ["gcr.io/a/run"]),
            RunImage::new("b/run", Vec::<String>::new()),
            RunImage::new("", ["orphan/mirror"]),
        ];
        let user = [RunImage::new("b/run", ["u/b1", "u/b2"]), RunImage::new("a/run", ["u/a"])];
        assert_eq!(
            rows(&inspect_run_images(&builder, &user)),
            vec![
                ("u/b1", true),
                ("u/b2", true),
                ("u/a", true),
                ("a/run", false),
                ("gcr.io/a/run", false),
                ("b/run", false),
                ("orphan/mirror", false),
            ]
        );
        assert!(inspect_run_images(&[], &user).is_empty());
    }

    #[test]
    fn inspect_rows_json_matches_pack() {
        let builder = [RunImage::new("pack-test/run", ["m"])];
        let user = [RunImage::new("pack-test/run", ["u"])];
        let json = serde_json::to_value(inspect_run_images(&builder, &user)).expect("json");
        assert_eq!(
            json,
            serde_json::json!([
                {"name": "u", "user_configured": true},
                {"name": "pack-test/run"},
                {"name": "m"}
            ])
        );
    }
}
