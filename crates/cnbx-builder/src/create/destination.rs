//! Where `builder create` writes the builder, and everything that depends on it: one home for
//! every per-destination decision, used by the create ([`super::write`]), the dry run
//! ([`super::dry_run`]) and the CLI (through [`DestinationKind`] and [`Destination::tip`]).
//!
//! | capability | store | engine | layout | archive | registry |
//! |---|---|---|---|---|---|
//! | holds an index of several targets | yes | no | yes | no | yes |
//! | `--tag`s (more names, same kind) | store | engine | no | no | registry |
//! | per-target names (`--append-image-name-suffix`) | no | no | no | no | yes |
//! | reads what it writes through a digest check | no | yes | yes | yes | yes |
//! | what a name holds now | manifest/index digest | image ID | manifest/index digest | nothing | manifest/index digest |
//! | a layer it has already | blob | layer of a chain it holds | blob | never | blob |
//!
//! The engine holds images, not manifests: what its names hold and would hold is compared by
//! image ID (the digest of the config, as the Docker daemon and Podman name images).

use std::path::{Path, PathBuf};

use cnbx_model::Target;
use cnbx_oci::engine::HeldLayers;
use cnbx_oci::image::ImageToWrite;
use cnbx_oci::progress::ReporterExt;
use cnbx_oci::registry::PushOutcome;
use cnbx_oci::store::LocalStore;
use cnbx_oci::{BlobSource, Digest, OciLayout};
use cnbx_refs::{ImageLocation, ImageRef};

use super::CreateError;
use super::dry_run::{DryRunError, KnownLayer, LayerAction};
use super::write::WriteError;
use crate::images::Images;

/// The kind of destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestinationKind {
    /// The cnbx store (`CNBX_HOME/store`).
    Store,
    /// The local container engine (the Docker daemon or Podman).
    Engine,
    /// An OCI layout.
    Layout,
    /// A docker-archive.
    Archive,
    /// A registry (`--publish`).
    Registry,
}

impl DestinationKind {
    /// How reports name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::Engine => "engine",
            Self::Layout => "layout",
            Self::Archive => "docker-archive",
            Self::Registry => "registry",
        }
    }
}

/// Where the builder goes (see the module docs).
#[derive(Debug, Clone)]
pub(crate) enum Destination {
    /// A name in the cnbx store.
    Store(ImageRef),
    /// A tag in the container engine.
    Engine(ImageRef),
    /// A name on its registry.
    Registry(ImageRef),
    /// A tag in an OCI layout.
    Layout { dir: PathBuf, tag: String },
    /// A docker-archive file, with the name it records, if any.
    Archive { file: PathBuf, reference: Option<ImageRef> },
}

impl Destination {
    /// The destination `location` means: with `publish`, a registry name; otherwise a bare name
    /// is the engine's when `images` sends bare names there, else the cnbx store's.
    pub(crate) fn of(
        location: ImageLocation,
        shown: &str,
        publish: bool,
        images: &Images,
    ) -> Result<Self, CreateError> {
        Ok(match (location, publish) {
            (ImageLocation::Name(r), true) => Self::Registry(r),
            (ImageLocation::Name(r), false) if images.bare_names_in_engine() => Self::Engine(r),
            (ImageLocation::Name(r), false) => Self::Store(r),
            (ImageLocation::DockerDaemon(d), false) => match d.as_reference() {
                Some(r) if r.digest().is_none() => Self::Engine(r.clone()),
                _ => {
                    return Err(CreateError::Usage(format!(
                        "'{shown}' names an image in the container engine by digest or ID, which a builder cannot be \
                         written under; name it docker-daemon:NAME[:TAG]"
                    )));
                }
            },
            (ImageLocation::OciLayout { dir, tag }, false) => Self::Layout { dir, tag },
            (ImageLocation::DockerArchive { file, reference }, false) => Self::Archive { file, reference },
            (_, true) => {
                return Err(CreateError::Usage(format!(
                    "--publish pushes to a registry, but '{shown}' is not a registry image name; drop --publish to \
                     write it, or name an image such as registry.example.com/team/builder:tag"
                )));
            }
        })
    }

    /// Its kind.
    pub(crate) fn kind(&self) -> DestinationKind {
        match self {
            Self::Store(_) => DestinationKind::Store,
            Self::Engine(_) => DestinationKind::Engine,
            Self::Registry(_) => DestinationKind::Registry,
            Self::Layout { .. } => DestinationKind::Layout,
            Self::Archive { .. } => DestinationKind::Archive,
        }
    }

    /// Whether it holds one image only, so one target: a docker-archive, and the engine (which
    /// keeps no image index).
    pub(crate) fn holds_one_image(&self) -> bool {
        matches!(self, Self::Archive { .. } | Self::Engine(_))
    }

    /// What it is, for "holds one image" messages.
    fn noun(&self) -> &'static str {
        match self {
            Self::Archive { .. } => "a docker-archive",
            Self::Engine(_) => "the container engine",
            Self::Store(_) => "the cnbx store",
            Self::Registry(_) => "a registry",
            Self::Layout { .. } => "an OCI layout",
        }
    }

    /// Refuses `count` targets where it holds one image.
    pub(crate) fn check_targets(&self, count: usize) -> Result<(), CreateError> {
        if count > 1 && self.holds_one_image() {
            return Err(CreateError::Usage(format!(
                "{} holds one image per name, but {count} targets were given; pick one with --target",
                self.noun()
            )));
        }
        Ok(())
    }

    /// The destinations of the `--tag`s `tags`: the same kind of place (the cnbx store, the
    /// engine, or the registry with `--publish`). An `oci:` layout or a docker-archive takes
    /// none.
    pub(crate) fn tags(&self, tags: &[String], shown: &str) -> Result<Vec<Self>, CreateError> {
        if tags.is_empty() {
            return Ok(Vec::new());
        }
        let make: fn(ImageRef) -> Self = match self {
            Self::Store(_) => Self::Store,
            Self::Engine(_) => Self::Engine,
            Self::Registry(_) => Self::Registry,
            Self::Layout { .. } | Self::Archive { .. } => {
                return Err(CreateError::Usage(format!(
                    "--tag names more images in the cnbx store, the container engine or a registry, but '{shown}' is \
                     not an image name"
                )));
            }
        };
        tags.iter()
            .map(|t| {
                ImageRef::parse(t)
                    .map(make)
                    .map_err(|source| CreateError::Destination { destination: t.clone(), source })
            })
            .collect()
    }

    /// The name of one target's image with `--append-image-name-suffix` (registries only:
    /// `None` elsewhere).
    pub(crate) fn per_target(&self, target: &Target) -> Result<Option<Self>, CreateError> {
        match self {
            Self::Registry(reference) => Ok(Some(Self::Registry(suffixed(reference, target)?))),
            _ => Ok(None),
        }
    }

    /// Whether writing to this destination, and to the extra `tags`, reads every layer taken
    /// from the local store through a check of its digest, failing on a mismatch before the
    /// write is complete: copies into an `oci:` layout or a docker-archive, loads into the
    /// engine and uploads do. Saving into the cnbx store reads nothing, the blobs being there
    /// already.
    pub(crate) fn checks_what_it_reads(&self, tags: &[Self]) -> bool {
        !matches!(self, Self::Store(_)) && !tags.iter().any(|t| matches!(t, Self::Store(_)))
    }

    /// The name as shown in reports: a reference fully qualified, a layout as `oci:DIR:TAG`.
    pub(crate) fn name(&self) -> String {
        match self {
            Self::Store(r) | Self::Registry(r) => r.to_string(),
            Self::Engine(r) => r.original().to_owned(),
            Self::Layout { dir, tag } => format!("oci:{}:{tag}", dir.display()),
            Self::Archive { file, .. } => format!("docker-archive:{}", file.display()),
        }
    }

    /// Where it is, for messages: `into the cnbx store (DIR)`, `into the Docker daemon at
    /// unix:///var/run/docker.sock`, `into the OCI layout DIR`, `into the docker-archive FILE`,
    /// `to the registry HOST`.
    pub(crate) fn place(&self, images: &Images) -> String {
        match self {
            Self::Store(_) => format!("into the cnbx store ({})", images.home().store_dir().display()),
            Self::Engine(_) => match images.connected_engine() {
                Some(engine) => format!("into {}", engine.describe()),
                None => "into the container engine".to_owned(),
            },
            Self::Registry(r) => format!("to the registry {}", r.registry()),
            Self::Layout { dir, .. } => format!("into the OCI layout {}", dir.display()),
            Self::Archive { file, .. } => format!("into the docker-archive {}", file.display()),
        }
    }

    /// What to do next with a builder written here, for the CLI's closing tip.
    pub(crate) fn tip(&self, shown: &str) -> String {
        match self {
            Self::Engine(r) | Self::Registry(r) => {
                format!("Tip: Run 'pack build <image-name> --builder {}' to use this builder", r.original())
            }
            Self::Store(r) => format!(
                "Tip: the cnbx store is cnbx's own ('cnbx builder inspect {0}' reads it), which pack and docker do not \
                 see: for 'pack build', create it with --publish, or into a running Docker or Podman \
                 (docker-daemon:{0})",
                r.original()
            ),
            Self::Archive { file, .. } => format!(
                "Tip: load it into Docker with 'docker load -i {}', then use it with 'pack build --builder'",
                file.display()
            ),
            Self::Layout { .. } => {
                format!(
                    "Tip: push it with 'skopeo copy --all {shown} docker://<registry>/<name>' to use it with pack or kpack"
                )
            }
        }
    }

    /// Writes `built` (one image per target) here. Returns the digest the name points at (the
    /// engine: the image ID) and what a push transferred.
    pub(crate) async fn write(
        &self,
        images: &Images,
        shown: &str,
        built: &[ImageToWrite],
    ) -> Result<(Digest, Option<PushOutcome>), WriteError> {
        match self {
            Self::Registry(reference) => {
                let built = local_copies_for(images, reference, built);
                let outcome =
                    images.registry().push(reference, &built, images.reporter()).await.map_err(|source| {
                        WriteError::Push { reference: reference.clone(), source: Box::new(source) }
                    })?;
                Ok((outcome.digest.clone(), Some(outcome)))
            }
            Self::Store(reference) => {
                let d = images
                    .store()
                    .put(reference, built)
                    .map_err(|source| WriteError::Store { reference: reference.clone(), source })?;
                Ok((d.digest, None))
            }
            Self::Engine(reference) => {
                let image = built.first().ok_or_else(|| WriteError::Nothing { destination: shown.to_owned() })?;
                let id = load_into_engine(images, image, std::slice::from_ref(reference), &[]).await?;
                Ok((id, None))
            }
            Self::Layout { dir, tag } => {
                let layout =
                    OciLayout::create(dir).map_err(|source| WriteError::OpenLayout { dir: dir.clone(), source })?;
                layout.blobs().set_reporter(images.shared_reporter());
                let d = layout
                    .write(tag, built)
                    .map_err(|source| WriteError::Layout { destination: shown.to_owned(), source })?;
                Ok((d.digest, None))
            }
            Self::Archive { file, reference } => {
                let tags: Vec<ImageRef> = reference.iter().cloned().collect();
                cnbx_oci::write_docker_archive(file, &tags, built)
                    .map_err(|source| WriteError::Archive { destination: shown.to_owned(), source })?;
                let manifest = built.first().map(ImageToWrite::manifest);
                Ok((manifest.map(|m| m.digest).unwrap_or_else(Digest::empty), None))
            }
        }
    }

    /// What the name points at now (`None`: nothing; a docker-archive is always written): the
    /// manifest or index digest, or for the engine the image ID.
    pub(crate) async fn holds(&self, images: &Images) -> Result<Option<Digest>, DryRunError> {
        let name = self.name();
        let layout_err = |e| DryRunError::Layout { name: name.clone(), source: Box::new(e) };
        match self {
            Self::Store(reference) => {
                let entry = images.store().layout().resolve(&LocalStore::key(reference)).map_err(layout_err)?;
                Ok(entry.map(|d| d.digest))
            }
            Self::Engine(reference) => Ok(engine_image(images, reference).await?.and_then(|i| i.id_digest())),
            Self::Layout { dir, tag } => match open_layout(dir, &name)? {
                Some(layout) => Ok(layout.resolve(tag).map_err(layout_err)?.map(|d| d.digest)),
                None => Ok(None),
            },
            Self::Archive { .. } => Ok(None),
            Self::Registry(reference) => {
                let document =
                    images.registry().fetch_document(reference).await.map_err(|e| registry_err(reference, e))?;
                Ok(document.map(|bytes| Digest::of(&bytes)))
            }
        }
    }

    /// Which of `layers` (those known, in order; `None` for a layer still to be built) it has
    /// already: the blob for the cnbx store, a layout and a registry repository; for the
    /// engine, the leading layers of a chain it holds ([`engine_chains`]).
    pub(crate) async fn present(
        &self,
        images: &Images,
        layers: &[Option<&KnownLayer>],
        base: &[String],
    ) -> Result<Vec<bool>, CreateError> {
        Ok(match self {
            Self::Store(_) => layers.iter().map(|k| k.is_some_and(|k| images.blobs().contains(&k.digest))).collect(),
            Self::Layout { dir, .. } => {
                let layout = open_layout(dir, &dir.display().to_string())?;
                let has = |k: &KnownLayer| layout.as_ref().is_some_and(|l| l.blobs().contains(&k.digest));
                layers.iter().map(|k| k.is_some_and(has)).collect()
            }
            Self::Archive { .. } => vec![false; layers.len()],
            Self::Engine(reference) => {
                let held = engine_chains(images, std::slice::from_ref(reference), base).await?;
                let known: Vec<Digest> = layers.iter().map_while(|k| k.map(|k| k.diff_id.clone())).collect();
                let prefix = held.common_prefix(&known);
                (0..layers.len()).map(|i| i < prefix).collect()
            }
            Self::Registry(reference) => {
                let digests: Vec<Digest> = layers.iter().filter_map(|k| k.map(|k| k.digest.clone())).collect();
                let mut answers = images
                    .registry()
                    .blobs_present(reference, &digests)
                    .await
                    .map_err(|e| registry_err(reference, e))?
                    .into_iter();
                layers.iter().map(|k| k.is_some() && answers.next().unwrap_or(false)).collect()
            }
        })
    }

    /// What writing one layer would take, given whether the destination has it (`present`),
    /// where the layer comes from, and whether it is known.
    pub(crate) fn action(&self, present: bool, source: &BlobSource, known: bool) -> LayerAction {
        match self {
            _ if present => LayerAction::Exists,
            Self::Registry(reference) => match source {
                BlobSource::Registry(from)
                    if known
                        && from.registry() == reference.registry()
                        && from.repository() != reference.repository() =>
                {
                    LayerAction::Mount
                }
                _ => LayerAction::Upload,
            },
            Self::Engine(_) => LayerAction::Load,
            _ => LayerAction::Write,
        }
    }
}

/// Writes the image into the engine under `tags` (see [`crate::images`] for the engine), sending
/// only the layers it lacks: the layer chains of what the tags hold now, of the images read
/// from the engine for this command and of the images named `base` (the build image, as the
/// engine names it) are left out. Nothing is sent when every tag holds the image already.
/// Returns the image ID.
pub(crate) async fn load_into_engine(
    images: &Images,
    image: &ImageToWrite,
    tags: &[ImageRef],
    base: &[String],
) -> Result<Digest, WriteError> {
    let engine = images.engine().await.map_err(|source| WriteError::Engine { source: Box::new(source) })?;
    let engine_err = |source| WriteError::EngineLoad { engine: engine.describe(), source: Box::new(source) };
    let diff_ids: Vec<Digest> = image.layers.iter().map(|l| l.diff_id.clone()).collect();
    let mut up_to_date = true;
    let mut chains = Vec::new();
    for tag in tags {
        match engine.inspect(&engine_name(tag)).await.map_err(engine_err)? {
            Some(found) => {
                up_to_date &= found.id_digest().as_ref() == Some(&image.config.digest) && found.diff_ids == diff_ids;
                chains.push(found.diff_ids);
            }
            None => up_to_date = false,
        }
    }
    if up_to_date {
        let names: Vec<String> = tags.iter().map(|t| format!("'{}'", t.original())).collect();
        images.reporter().debug(&format!(
            "{} in {} already holds this image: nothing to load",
            names.join(", "),
            engine.describe()
        ));
        return Ok(image.config.digest.clone());
    }
    chains.extend(images.engine_chains_read());
    for name in base {
        if let Some(found) = engine.inspect(name).await.map_err(engine_err)? {
            chains.push(found.diff_ids);
        }
    }
    let held = HeldLayers::from_chains(chains);
    let outcome = engine.load(image, tags, &held, images.shared_reporter()).await.map_err(engine_err)?;
    images.reporter().debug(&format!(
        "Loaded {} layer(s) ({} bytes) into {}, {} left out as it holds them{}",
        outcome.layers_sent,
        outcome.bytes_sent,
        engine.describe(),
        outcome.layers_left_out,
        if outcome.resent_whole { " (sent again whole: the engine no longer held them)" } else { "" }
    ));
    Ok(outcome.image_id.parse().unwrap_or_else(|_| image.config.digest.clone()))
}

/// How the engine names `reference`: `name:tag` in Docker's short form (`latest` when no tag).
pub(crate) fn engine_name(reference: &ImageRef) -> String {
    reference.with_tag(reference.tag().unwrap_or(cnbx_refs::reference::DEFAULT_TAG)).familiar()
}

/// The engine's image named `reference`, if it has it.
async fn engine_image(
    images: &Images,
    reference: &ImageRef,
) -> Result<Option<cnbx_oci::engine::EngineImage>, DryRunError> {
    let engine = images.engine().await.map_err(|e| DryRunError::Engine { source: Box::new(e) })?;
    engine.inspect(&engine_name(reference)).await.map_err(|e| DryRunError::Engine { source: Box::new(e.into()) })
}

/// The layer chains the engine holds that a load of the builder could leave out: those of
/// what `tags` hold now, of the images read from the engine for this command, and of the
/// images named `base`.
async fn engine_chains(images: &Images, tags: &[ImageRef], base: &[String]) -> Result<HeldLayers, DryRunError> {
    let mut chains = Vec::new();
    for tag in tags {
        if let Some(found) = engine_image(images, tag).await? {
            chains.push(found.diff_ids);
        }
    }
    chains.extend(images.engine_chains_read());
    let engine = images.engine().await.map_err(|e| DryRunError::Engine { source: Box::new(e) })?;
    for name in base {
        let found = engine.inspect(name).await.map_err(|e| DryRunError::Engine { source: Box::new(e.into()) })?;
        chains.extend(found.map(|f| f.diff_ids));
    }
    Ok(HeldLayers::from_chains(chains))
}

/// pack's per-target name: the non-empty of os, arch, variant and each distro, joined by `-`,
/// appended to the tag (`latest` is replaced); digest references stay as they are. pack writes
/// a distro as `name@version`, which no registry accepts in a tag; cnbx writes `name-version`.
pub(crate) fn suffixed(reference: &ImageRef, target: &Target) -> Result<ImageRef, CreateError> {
    if reference.digest().is_some() {
        return Ok(reference.clone());
    }
    let mut parts: Vec<String> =
        [&target.os, &target.arch, &target.variant].iter().filter(|p| !p.is_empty()).map(|p| (*p).clone()).collect();
    parts.extend(target.distros.iter().map(|d| format!("{}-{}", d.name, d.version)));
    let suffix = parts.join("-");
    let tag = match reference.tag() {
        None | Some("latest") => suffix,
        Some(tag) => format!("{tag}-{suffix}"),
    };
    reference
        .try_with_tag(&tag)
        .map_err(|source| CreateError::Destination { destination: format!("{}:{tag}", reference.name()), source })
}

/// `built`, with every layer that lives on another registry than `destination` read from the
/// local blob store instead when it is there (a buildpackage layer pulled to be checked): an
/// upload from a local file instead of a second download from the source registry. Layers on
/// the destination's own registry keep their source, so that they are mounted, not uploaded.
fn local_copies_for(images: &Images, destination: &ImageRef, built: &[ImageToWrite]) -> Vec<ImageToWrite> {
    let store = images.blobs();
    built
        .iter()
        .map(|image| {
            let mut image = image.clone();
            for layer in &mut image.layers {
                if let BlobSource::Registry(src) = &layer.source
                    && src.registry() != destination.registry()
                    && store.contains(&layer.descriptor.digest)
                {
                    layer.source = BlobSource::Store(store.clone());
                }
            }
            image
        })
        .collect()
}

fn registry_err(reference: &ImageRef, e: cnbx_oci::registry::RegistryError) -> DryRunError {
    DryRunError::Registry { name: reference.to_string(), source: Box::new(e) }
}

/// The layout at `dir` if there is one (nothing is created).
fn open_layout(dir: &Path, name: &str) -> Result<Option<OciLayout>, DryRunError> {
    if !dir.join("oci-layout").exists() {
        return Ok(None);
    }
    OciLayout::open(dir).map(Some).map_err(|e| DryRunError::Layout { name: name.to_owned(), source: Box::new(e) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(os: &str, arch: &str, variant: &str, distros: &[(&str, &str)]) -> Target {
        Target {
            os: os.into(),
            arch: arch.into(),
            variant: variant.into(),
            distros: distros
                .iter()
                .map(|(n, v)| cnbx_model::Distribution { name: (*n).into(), version: (*v).into() })
                .collect(),
        }
    }

    #[test]
    fn suffixed_names_follow_pack() {
        let t = target("linux", "arm64", "v8", &[("ubuntu", "22.04")]);
        let s = |r: &str| suffixed(&ImageRef::parse(r).unwrap(), &t).unwrap().to_string();
        assert_eq!(s("r.example/b:latest"), "r.example/b:linux-arm64-v8-ubuntu-22.04");
        assert_eq!(s("r.example/b"), "r.example/b:linux-arm64-v8-ubuntu-22.04");
        assert_eq!(s("r.example/b:1"), "r.example/b:1-linux-arm64-v8-ubuntu-22.04");
        let digest = format!("r.example/b@sha256:{}", "a".repeat(64));
        assert_eq!(s(&digest), digest);
        let plain = target("linux", "amd64", "", &[]);
        assert_eq!(suffixed(&ImageRef::parse("b:2").unwrap(), &plain).unwrap().tag(), Some("2-linux-amd64"));
    }

    #[test]
    fn engine_names_are_docker_short_names_with_a_tag() {
        assert_eq!(engine_name(&ImageRef::parse("my-builder").unwrap()), "my-builder:latest");
        assert_eq!(engine_name(&ImageRef::parse("docker.io/library/x:1").unwrap()), "x:1");
        assert_eq!(engine_name(&ImageRef::parse("cnbx.test/b:2").unwrap()), "cnbx.test/b:2");
    }
}
