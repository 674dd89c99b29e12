//! An image of the engine as a [`SourceImage`]: see [`Engine::read_image`].

use std::sync::{Arc, Mutex, PoisonError};

use futures_util::StreamExt;

use super::{BlockingBody, BodyFailure, Engine, EngineError, EngineImage};
use crate::blobstore::BlobStore;
use crate::cache::LayerCache;
use crate::config::ImageConfig;
use crate::docker_archive_read::{ArchiveFormat, ArchiveSink, assemble, cached_layer, read_docker_archive_stream};
use crate::image::SourceImage;
use crate::progress::Reporter;

/// Where [`Engine::read_inspected`] looks and writes.
#[derive(Debug, Clone, Copy)]
pub struct ReadPlaces<'a> {
    /// Where the config is looked up by the image ID (and the cached layers' blobs are).
    pub store: &'a BlobStore,
    /// Where the layers are looked up by diffID (none: the image is always exported).
    pub cache: Option<&'a LayerCache>,
    /// Where an export's config and layers go.
    pub export_store: &'a BlobStore,
    /// Where an export's layers are recorded by diffID, if anywhere.
    pub export_cache: Option<&'a LayerCache>,
}

/// An image read from the engine.
#[derive(Debug, Clone)]
pub struct EngineRead {
    /// The image: its config as the engine has it, its layers in the blob store given,
    /// compressed as cnbx compresses layers; its manifest is made by cnbx with Docker's
    /// media types, the same whether the layers were exported now or found in the cache.
    /// Its display name is `docker-daemon:<name>`.
    pub image: SourceImage,
    /// What the engine's inspect said of it.
    pub engine_image: EngineImage,
    /// Whether it was exported from the engine (`false`: the config and every layer were
    /// in the store and the cache already, and only the inspect was read).
    pub exported: bool,
}

impl Engine {
    /// Reads the image `name` (a reference as the engine spells it, or an ID) into `store`,
    /// or `None` when the engine does not have it.
    ///
    /// When the store holds the config whose digest is the image's ID, with the diffIDs the
    /// inspect gives, and `cache` holds every layer by diffID, the image is made from them:
    /// nothing else is read from the engine. Otherwise the image is exported by its ID
    /// (`GET /images/{id}/get`, so that it is the image inspected even if the name moves)
    /// and read as it streams ([`crate::docker_archive_read`]): every layer is checked
    /// against its diffID, compressed, stored and recorded in `cache`; the image must have
    /// the layers the inspect gave.
    pub async fn read_image(
        &self,
        name: &str,
        store: &BlobStore,
        cache: Option<&LayerCache>,
        reporter: Arc<dyn Reporter>,
    ) -> Result<Option<EngineRead>, EngineError> {
        let Some(found) = self.inspect(name).await? else { return Ok(None) };
        let places = ReadPlaces { store, cache, export_store: store, export_cache: cache };
        self.read_inspected(name, found, places, reporter).await.map(Some)
    }

    /// [`Engine::read_image`] of an image already inspected (`found`, the inspect of `name`),
    /// with the places of `places`: the warm path looks in `store` and `cache`, an export goes
    /// into `export_store` and `export_cache` (a read-only command's scratch space).
    pub async fn read_inspected(
        &self,
        name: &str,
        found: EngineImage,
        places: ReadPlaces<'_>,
        reporter: Arc<dyn Reporter>,
    ) -> Result<EngineRead, EngineError> {
        let display = format!("docker-daemon:{name}");
        if let Some(cache) = places.cache
            && let Some(read) = Self::cached(name, &found, places.store, cache)
        {
            return Ok(read);
        }

        let what = format!("the export of {}", cnbx_fs::excerpt(name));
        let path = format!("/images/{}/get", super::path_segment(&found.id));
        let response = self.send(self.inner.http.get(self.url(&path)), &what).await?;
        if response.status().as_u16() == 404 {
            return Err(EngineError::Changed { engine: self.describe(), image: display });
        }
        if !response.status().is_success() {
            return Err(self.refused(response, &what).await);
        }
        let failed = Arc::new(Mutex::new(None));
        let body = BlockingBody {
            rt: tokio::runtime::Handle::current(),
            stream: response.bytes_stream().boxed(),
            current: bytes::Bytes::new(),
            stall: self.inner.options.stall,
            failed: Arc::clone(&failed),
        };
        let archive = format!("{what} from {}", self.describe());
        let (store_c, cache_c) = (places.export_store.clone(), places.export_cache.cloned());
        let read = tokio::task::spawn_blocking(move || {
            let sink = ArchiveSink { store: &store_c, cache: cache_c.as_ref(), reporter: reporter.as_ref() };
            read_docker_archive_stream(body, &archive, None, None, sink)
        })
        .await
        .map_err(|e| EngineError::Broken {
            engine: self.describe(),
            what: what.clone(),
            reason: e.to_string(),
        })?;
        let read = match read {
            Ok(read) => read,
            Err(e) => {
                return Err(match failed.lock().unwrap_or_else(PoisonError::into_inner).take() {
                    Some(BodyFailure::Stalled(after)) => EngineError::Timeout { engine: self.describe(), what, after },
                    Some(BodyFailure::Transport(t)) => self.transport_error(&t, &what),
                    None => EngineError::Archive(e),
                });
            }
        };
        let read = read.in_family(ArchiveFormat::Classic);
        let diff_ids: Vec<_> = read.layers.iter().map(|l| l.diff_id.clone()).collect();
        if diff_ids != found.diff_ids {
            return Err(EngineError::Changed { engine: self.describe(), image: display });
        }
        let mut image = read.image;
        image.display_name = display;
        Ok(EngineRead { image, engine_image: found, exported: true })
    }
}

impl Engine {
    /// The image `found` (the inspect of `name`) made from `store` and `cache` alone, if they
    /// hold all of it (the warm path of [`Engine::read_image`]); nothing is read from the
    /// engine and nothing is written.
    pub fn cached(name: &str, found: &EngineImage, store: &BlobStore, cache: &LayerCache) -> Option<EngineRead> {
        let image = from_store(found, &format!("docker-daemon:{name}"), store, cache)?;
        Some(EngineRead { image, engine_image: found.clone(), exported: false })
    }
}

/// The image made from the store and the cache alone, if they hold all of it.
fn from_store(found: &EngineImage, display: &str, store: &BlobStore, cache: &LayerCache) -> Option<SourceImage> {
    let config_digest = found.id_digest()?;
    let bytes = store.read_document(&config_digest, "an image config").ok()?;
    let config = ImageConfig::from_slice(&bytes).ok()?;
    if config.diff_ids().ok()? != found.diff_ids {
        return None;
    }
    let layers: Option<Vec<_>> = found.diff_ids.iter().map(|d| cached_layer(cache, store, d)).collect();
    let (_, _, layer_type) = ArchiveFormat::Classic.media_types();
    let layers: Vec<_> = layers?
        .into_iter()
        .map(|mut l| {
            l.descriptor.media_type = layer_type.to_owned();
            l
        })
        .collect();
    assemble(display, bytes, config, &layers, ArchiveFormat::Classic, store).ok()
}
