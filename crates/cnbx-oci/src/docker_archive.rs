//! `docker-archive:<file>[:<ref>]`: a tar that `docker load` (and skopeo) accept.
//!
//! Layout, as `docker save` writes it (minus the legacy per-layer `json`/`VERSION` files,
//! which `docker load` ignores when `manifest.json` is present):
//!
//! ```text
//! <config hex>.json                the image config
//! <blob hex>/layer.tar             each layer blob, as stored (gzip; docker load and
//!                                  skopeo detect the compression)
//! manifest.json                    [{"Config":"<hex>.json","RepoTags":[...],"Layers":[...]}]
//! repositories                     {"<repo>":{"<tag>":"<config hex>"}}, when tagged
//! ```
//!
//! The archive is deterministic: members sorted by name, written with the pack-style
//! encoder ([`crate::tarball`]) with uid/gid 0 and the normalised mtime. It is written with
//! [`cnbx_fs::AtomicFile`] (a temporary file in the target directory, renamed into place),
//! so the target is either the old file or the complete new one, with the mode the umask
//! gives (0644 under 022). Each layer is hashed while it is copied and must match its
//! descriptor (digest and size): a changed or corrupt blob fails the write, naming the
//! blob, and leaves the target as it was. The format holds one image, so a multi-platform
//! build must pick one target.

use std::collections::BTreeMap;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use cnbx_fs::AtomicFile;
use cnbx_refs::ImageRef;
use serde_json::json;

use crate::blobstore::BlobError;
use crate::digest::Digest;
use crate::image::{BlobSource, ImageToWrite};
use crate::tarball::{TarEntry, TarError, TarWriter};

/// Errors from writing a docker archive. Each names the target file.
#[derive(Debug, thiserror::Error)]
pub enum DockerArchiveError {
    /// More (or fewer) than one image.
    #[error(
        "docker-archive:{} holds exactly one image, but {count} platforms were built ({platforms}); pass a single --target",
        path.display()
    )]
    NotOneImage {
        /// Target file.
        path: PathBuf,
        /// Number of images given.
        count: usize,
        /// Their platforms, comma-separated.
        platforms: String,
    },
    /// A layer is only on a registry.
    #[error(
        "docker-archive:{}: layer {digest} is only on registry {reference}; pull it into a local store first",
        path.display()
    )]
    RemoteBlob {
        /// Target file.
        path: PathBuf,
        /// The layer blob.
        digest: Digest,
        /// Where it is.
        reference: String,
    },
    /// A tag has a digest instead of a tag.
    #[error("docker-archive:{}: {reference} cannot be a RepoTag (it has no tag)", path.display())]
    NotATag {
        /// Target file.
        path: PathBuf,
        /// The reference.
        reference: String,
    },
    /// A layer blob is missing from its store, unreadable, or not what its descriptor says.
    #[error("docker-archive:{}: reading layer {digest} from {}", path.display(), store.display())]
    Blob {
        /// Target file.
        path: PathBuf,
        /// The layer blob.
        digest: Digest,
        /// The store it should be in.
        store: PathBuf,
        /// What is wrong.
        #[source]
        source: Box<BlobError>,
    },
    /// Writing the archive failed.
    #[error("docker-archive:{}", path.display())]
    Tar {
        /// Target file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: TarError,
    },
    /// Creating or renaming the file failed.
    #[error("docker-archive:{}: {what}", path.display())]
    Io {
        /// Target file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// What goes into one archive member.
enum Member<'a> {
    Dir,
    Bytes(Vec<u8>),
    Blob { store: &'a crate::BlobStore, descriptor: &'a crate::spec::Descriptor },
}

/// Writes `images` (which must be exactly one) to `path` as a docker archive, with
/// `tags` as its `RepoTags` (Docker's familiar form, `:latest` added when untagged).
pub fn write_docker_archive(path: &Path, tags: &[ImageRef], images: &[ImageToWrite]) -> Result<(), DockerArchiveError> {
    let [image] = images else {
        return Err(DockerArchiveError::NotOneImage {
            path: path.to_path_buf(),
            count: images.len(),
            platforms: images.iter().map(|i| i.platform.to_string()).collect::<Vec<_>>().join(", "),
        });
    };

    let io_err = |what: &'static str| move |source| DockerArchiveError::Io { path: path.to_path_buf(), what, source };
    let tmp = AtomicFile::for_destination(path).map_err(io_err("creating a temporary file next to it"))?;
    let buffered = write_archive_to(BufWriter::with_capacity(128 * 1024, tmp), path, tags, image, &|_| false)?;
    let tmp = buffered.into_inner().map_err(|e| io_err("writing")(e.into_error()))?;
    tmp.commit(path).map_err(io_err("writing"))?;
    Ok(())
}

/// Writes the archive of `image` tagged `tags` into `out` (see [`write_docker_archive`]),
/// as a stream: `path` only names it in errors. A layer for which `placeholder` is true is
/// written as an empty `layer.tar`: for an engine that already holds it (see
/// [`crate::engine`]), which then never reads it. Returns `out` once the archive has ended.
pub(crate) fn write_archive_to<W: io::Write>(
    out: W,
    path: &Path,
    tags: &[ImageRef],
    image: &ImageToWrite,
    placeholder: &dyn Fn(&crate::image::LayerBlob) -> bool,
) -> Result<W, DockerArchiveError> {
    let mut repo_tags = Vec::with_capacity(tags.len());
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let config_hex = image.config.digest.hex().to_owned();
    for t in tags {
        if t.tag().is_none() && t.digest().is_some() {
            return Err(DockerArchiveError::NotATag { path: path.to_path_buf(), reference: t.original().to_owned() });
        }
        // `with_tag` also drops a digest, which has no place in a RepoTag.
        let tag = t.tag().unwrap_or(cnbx_refs::reference::DEFAULT_TAG).to_owned();
        let familiar = t.with_tag(&tag).familiar();
        let repo = familiar.strip_suffix(&format!(":{tag}")).unwrap_or(&familiar).to_owned();
        repositories.entry(repo).or_default().insert(tag, config_hex.clone());
        repo_tags.push(familiar);
    }

    let mut members: BTreeMap<String, Member<'_>> = BTreeMap::new();
    let mut layer_paths = Vec::with_capacity(image.layers.len());
    for layer in &image.layers {
        let digest = &layer.descriptor.digest;
        let store = match &layer.source {
            _ if placeholder(layer) => None,
            BlobSource::Store(s) => Some(s),
            BlobSource::Registry(r) => {
                return Err(DockerArchiveError::RemoteBlob {
                    path: path.to_path_buf(),
                    digest: digest.clone(),
                    reference: r.to_string(),
                });
            }
        };
        let dir = digest.hex().to_owned();
        let file = format!("{dir}/layer.tar");
        members.insert(dir, Member::Dir);
        let member = match store {
            Some(store) => Member::Blob { store, descriptor: &layer.descriptor },
            None => Member::Bytes(Vec::new()),
        };
        members.insert(file.clone(), member);
        layer_paths.push(file);
    }
    let config_name = format!("{config_hex}.json");
    members.insert(config_name.clone(), Member::Bytes(image.config.bytes.clone()));
    let manifest = json!([{ "Config": config_name, "RepoTags": repo_tags, "Layers": layer_paths }]);
    members.insert("manifest.json".into(), Member::Bytes(to_json(&manifest)));
    if !repositories.is_empty() {
        members.insert("repositories".into(), Member::Bytes(to_json(&json!(repositories))));
    }

    let mut tar = TarWriter::new(out);
    let tar_err = |source| DockerArchiveError::Tar { path: path.to_path_buf(), source };
    for (name, member) in &members {
        match member {
            Member::Dir => tar.append(&TarEntry::dir(name.as_str()), io::empty()).map_err(tar_err)?,
            Member::Bytes(b) => {
                tar.append(&TarEntry::file(name.as_str(), b.len() as u64), b.as_slice()).map_err(tar_err)?
            }
            Member::Blob { store, descriptor } => {
                let blob_err = |source| DockerArchiveError::Blob {
                    path: path.to_path_buf(),
                    digest: descriptor.digest.clone(),
                    store: store.root().to_path_buf(),
                    source: Box::new(source),
                };
                // Hashed while copied: a blob that is not what the descriptor says fails here,
                // and the temporary file is dropped with the target untouched.
                let mut blob = store.open_verified(&descriptor.digest, Some(descriptor.size)).map_err(blob_err)?;
                match tar.append(&TarEntry::file(name.as_str(), descriptor.size), &mut blob) {
                    Ok(_) => {}
                    Err(TarError::Read { source, .. }) => match BlobError::from_io(source) {
                        Ok(e) => return Err(blob_err(e)),
                        Err(source) => {
                            let from = store.path(&descriptor.digest).display().to_string();
                            return Err(blob_err(BlobError::Read { from, source }));
                        }
                    },
                    Err(e) => return Err(tar_err(e)),
                }
                descriptor.size
            }
        };
    }
    tar.finish().map_err(tar_err)
}

fn to_json(v: &serde_json::Value) -> Vec<u8> {
    crate::spec::to_canonical_json(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Platform;

    #[test]
    fn refuses_several_platforms() {
        let config = crate::config::ImageConfig::new(&Platform::new("linux", "amd64", None)).to_raw();
        let image = |arch: &str| ImageToWrite {
            manifest_media_type: crate::spec::media_type::OCI_MANIFEST.into(),
            config_media_type: crate::spec::media_type::OCI_CONFIG.into(),
            config: config.clone(),
            layers: vec![],
            platform: Platform::new("linux", arch, None),
            annotations: None,
        };
        let err = write_docker_archive(Path::new("/nonexistent/x.tar"), &[], &[image("amd64"), image("arm64")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "docker-archive:/nonexistent/x.tar holds exactly one image, but 2 platforms were built (linux/amd64, linux/arm64); pass a single --target"
        );
    }
}
