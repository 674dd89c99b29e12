//! The base images' file systems for the validator's layer mode: the few files and directory
//! headers [`RootFs`] keeps, rebuilt from the layer tars in rootfs order.
//!
//! Layers in the local blob store (the local store, an OCI layout) are read from there. Layers
//! on a registry (`--publish`) are streamed: each blob is read once, checked against its
//! descriptor's size and digest as it arrives, decompressed and parsed on a blocking thread,
//! and never stored. Memory stays bounded by a few chunks in flight plus what [`RootFs`] keeps.
//!
//! Images that share their lower layers (a build and a run image made from one base image)
//! read those layers once: the state after each layer is kept in [`SharedLayers`], keyed by
//! the chain of layer digests it results from, and the next image starts from its longest
//! known chain.

use std::io::{self, Read};

use cnbx_oci::image::{LayerBlob, SourceImage};
use cnbx_oci::spec::media_type;
use cnbx_oci::{BlobSource, BlobStore, Digest};
use cnbx_validate::{RootFs, RootFsBuilder};
use futures_util::StreamExt;

use crate::images::Images;

/// How many streamed chunks may wait for the parser.
const CHUNKS_IN_FLIGHT: usize = 8;

/// Why the layers of a base image could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BaseLayersError {
    /// The manifest and config disagree, or a layer cannot be read or parsed.
    #[error("reading the layers of '{image}'")]
    Read {
        /// The image.
        image: String,
        /// What failed.
        #[source]
        source: LayerReadError,
    },
    /// Streaming a layer from the registry failed.
    #[error("streaming the layers of '{image}' from its registry")]
    Registry {
        /// The image.
        image: String,
        /// What failed.
        #[source]
        source: Box<cnbx_oci::RegistryError>,
    },
}

/// Why the layers of a base image could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LayerReadError {
    /// The manifest and the config disagree.
    #[error(transparent)]
    Image(#[from] cnbx_oci::image::ImageError),
    /// A layer is not in the blob store as it should be.
    #[error(transparent)]
    Blob(#[from] cnbx_oci::blobstore::BlobError),
    /// A layer is not a valid (compressed) tar.
    #[error(transparent)]
    Parse(#[from] cnbx_validate::RootFsError),
    /// The layer stream ended before its layer did.
    #[error(transparent)]
    Stream(#[from] io::Error),
    /// The thread reading the layers stopped without a result.
    #[error("the layer parser stopped early")]
    Stopped,
}

/// How many layer-chain states [`SharedLayers`] keeps (each holds what [`RootFs`] keeps).
const MAX_SHARED_STATES: usize = 8;

/// The file-system states after chains of layers already read, for the next image whose
/// layers start with one of those chains. A layer's digest names its content, so the state
/// after a chain of digests is the same whichever image it was read for.
#[derive(Debug, Default)]
pub(crate) struct SharedLayers {
    states: Vec<(Vec<Digest>, RootFsBuilder)>,
}

impl SharedLayers {
    /// The longest chain known that starts `chain` (not all of it unless it is known whole):
    /// how many layers it covers, and a copy of the state after them.
    fn start(&self, chain: &[Digest]) -> (usize, RootFsBuilder) {
        self.states
            .iter()
            .filter(|(known, _)| chain.starts_with(known))
            .max_by_key(|(known, _)| known.len())
            .map_or_else(|| (0, RootFsBuilder::new()), |(known, state)| (known.len(), state.clone()))
    }

    /// A reader for the layers of `chain`, starting after the longest chain known.
    fn reader(&self, chain: &[Digest]) -> Reader {
        let (applied, builder) = self.start(chain);
        Reader { builder, applied, kept: Vec::new(), total: chain.len() }
    }

    /// Keeps the states `reader` passed while reading `chain`, and returns its file system.
    fn finish(&mut self, chain: &[Digest], reader: Reader) -> RootFs {
        for (applied, state) in reader.kept {
            self.keep(&chain[..applied], state);
        }
        reader.builder.finish()
    }

    /// Keeps the state after `chain` (the oldest kept state goes when there are too many).
    fn keep(&mut self, chain: &[Digest], state: RootFsBuilder) {
        if chain.is_empty() || self.states.iter().any(|(known, _)| known == chain) {
            return;
        }
        if self.states.len() == MAX_SHARED_STATES {
            self.states.remove(0);
        }
        self.states.push((chain.to_vec(), state));
    }
}

/// Reads layers on top of a state: the states after each layer but the last are handed to
/// `kept` (for [`SharedLayers`]), the last one is returned.
#[derive(Debug)]
struct Reader {
    builder: RootFsBuilder,
    /// How many layers `builder` holds.
    applied: usize,
    /// `(layers applied, state)` after each layer read here but the last (at most
    /// [`MAX_SHARED_STATES`] of them, the latest).
    kept: Vec<(usize, RootFsBuilder)>,
    /// How many layers there are in all.
    total: usize,
}

impl Reader {
    fn add(&mut self, reader: impl Read, kind: Compression) -> Result<(), LayerReadError> {
        add_layer(&mut self.builder, reader, kind)?;
        self.applied += 1;
        // Only the last states can stay kept (the oldest go first, and none of these chains
        // is known yet): copying the others would be thrown away.
        if self.applied < self.total && self.applied + MAX_SHARED_STATES >= self.total {
            self.kept.push((self.applied, self.builder.clone()));
        }
        Ok(())
    }
}

/// How a layer is compressed, as far as layer mode can read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    Gzip,
    None,
}

/// The compression of each layer, or `None` when one of them is in a compression layer mode
/// cannot read (zstd).
fn compressions(layers: &[LayerBlob]) -> Option<Vec<Compression>> {
    layers
        .iter()
        .map(|l| {
            let mt = &l.descriptor.media_type;
            if media_type::is_gzip_layer(mt) {
                Some(Compression::Gzip)
            } else if mt.ends_with("zstd") {
                None
            } else {
                Some(Compression::None)
            }
        })
        .collect()
}

/// The file system of `image` for layer mode: `Ok(None)` when a layer is compressed in a way
/// cnbx cannot read (the rules that need the layers are then not verified). Layers a chain in
/// `shared` already covers are not read again; the states after the layers read here are kept
/// there.
pub(crate) async fn read(
    images: &Images,
    image: &SourceImage,
    shared: &mut SharedLayers,
) -> Result<Option<RootFs>, BaseLayersError> {
    let read_err = |e: LayerReadError| BaseLayersError::Read { image: image.display_name.clone(), source: e };
    let layers = image.layers().map_err(|e| read_err(e.into()))?;
    let Some(kinds) = compressions(&layers) else { return Ok(None) };
    let chain: Vec<Digest> = layers.iter().map(|l| l.descriptor.digest.clone()).collect();
    let reader = shared.reader(&chain);
    let done = reader.applied;
    let (rest, kinds) = (layers[done..].to_vec(), kinds[done..].to_vec());
    let reader = match &image.source {
        BlobSource::Store(store) => {
            let (store, digests) = (store.clone(), rest.iter().map(|l| l.descriptor.digest.clone()).collect());
            tokio::task::spawn_blocking(move || from_store(&store, reader, digests, &kinds))
                .await
                .map_err(|_| read_err(LayerReadError::Stopped))?
                .map_err(read_err)?
        }
        BlobSource::Registry(_) => stream(images, image, reader, &rest, kinds).await?,
    };
    Ok(Some(shared.finish(&chain, reader)))
}

fn from_store(
    store: &BlobStore,
    mut reader: Reader,
    digests: Vec<Digest>,
    kinds: &[Compression],
) -> Result<Reader, LayerReadError> {
    for (digest, kind) in digests.iter().zip(kinds) {
        let file = store.open_blob(digest)?;
        reader.add(file, *kind)?;
    }
    Ok(reader)
}

/// The buffer a layer is read through, on both sides of the decompressor: the tar reader asks
/// for a few KiB at a time (headers, and skipping what it does not keep), and inflating a
/// large layer in such small steps costs more than the copy through a large buffer.
const LAYER_BUFFER: usize = 256 * 1024;

fn add_layer(builder: &mut RootFsBuilder, reader: impl Read, kind: Compression) -> Result<(), LayerReadError> {
    let reader = io::BufReader::with_capacity(LAYER_BUFFER, reader);
    match kind {
        Compression::Gzip => {
            builder.add_layer(io::BufReader::with_capacity(LAYER_BUFFER, flate2::read::MultiGzDecoder::new(reader)))?
        }
        Compression::None => builder.add_layer(reader)?,
    }
    Ok(())
}

/// What the streaming side hands to the parser.
enum Chunk {
    Data(bytes::Bytes),
    /// The current layer is complete.
    End,
}

async fn stream(
    images: &Images,
    image: &SourceImage,
    reader: Reader,
    layers: &[LayerBlob],
    kinds: Vec<Compression>,
) -> Result<Reader, BaseLayersError> {
    let read_err = |e: LayerReadError| BaseLayersError::Read { image: image.display_name.clone(), source: e };
    let registry_err = |e| BaseLayersError::Registry { image: image.display_name.clone(), source: Box::new(e) };
    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(CHUNKS_IN_FLIGHT);
    let parser = tokio::task::spawn_blocking(move || parse_stream(rx, reader, &kinds));
    let mut sent = Ok(());
    'layers: for layer in layers {
        let mut chunks = images.registry().blob_stream(image, &layer.descriptor).await.map_err(registry_err)?;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(registry_err)?;
            if tx.send(Chunk::Data(chunk)).await.is_err() {
                // The parser stopped: its error says why.
                sent = Err(());
                break 'layers;
            }
        }
        if tx.send(Chunk::End).await.is_err() {
            sent = Err(());
            break;
        }
    }
    drop(tx);
    let parsed = parser.await.map_err(|_| read_err(LayerReadError::Stopped))?;
    match (parsed, sent) {
        (Ok(fs), Ok(())) => Ok(fs),
        (Err(e), _) => Err(read_err(e)),
        (Ok(_), Err(())) => Err(read_err(LayerReadError::Stopped)),
    }
}

fn parse_stream(
    mut rx: tokio::sync::mpsc::Receiver<Chunk>,
    mut reader: Reader,
    kinds: &[Compression],
) -> Result<Reader, LayerReadError> {
    for kind in kinds {
        let mut chunks = ChannelReader { rx: &mut rx, buf: bytes::Bytes::new(), ended: false };
        reader.add(&mut chunks, *kind)?;
        // The tar ends before its blob does (padding, the rest of the gzip stream).
        chunks.drain()?;
    }
    Ok(reader)
}

/// One layer's chunks as a [`Read`]: end of file at [`Chunk::End`].
struct ChannelReader<'a> {
    rx: &'a mut tokio::sync::mpsc::Receiver<Chunk>,
    buf: bytes::Bytes,
    ended: bool,
}

impl ChannelReader<'_> {
    fn next_chunk(&mut self) -> io::Result<()> {
        match self.rx.blocking_recv() {
            Some(Chunk::Data(b)) => self.buf = b,
            Some(Chunk::End) => self.ended = true,
            None => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the layer stream ended early")),
        }
        Ok(())
    }

    fn drain(&mut self) -> io::Result<()> {
        self.buf.clear();
        while !self.ended {
            self.next_chunk()?;
            self.buf.clear();
        }
        Ok(())
    }
}

impl Read for ChannelReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.buf.is_empty() {
            if self.ended {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, content) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            header.set_cksum();
            tar.append_data(&mut header, path, content.as_bytes()).unwrap();
        }
        tar.into_inner().unwrap()
    }

    fn passwd(fs: &RootFs) -> String {
        match fs.file("/etc/passwd") {
            cnbx_validate::FileState::Present { content, .. } => String::from_utf8(content.to_vec()).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    /// Reads `chain` from `store` as [`read`] does, sharing lower layers through `shared`.
    fn read_chain(store: &BlobStore, chain: &[Digest], shared: &mut SharedLayers) -> Result<RootFs, LayerReadError> {
        let reader = shared.reader(chain);
        let done = reader.applied;
        let kinds = vec![Compression::None; chain.len() - done];
        let reader = from_store(store, reader, chain[done..].to_vec(), &kinds)?;
        Ok(shared.finish(chain, reader))
    }

    #[test]
    fn images_on_one_base_read_its_layers_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let base = store.put_bytes(&tar_of(&[("etc/passwd", "root:x:0:0::/root:/bin/sh\n")])).unwrap();
        let build = store.put_bytes(&tar_of(&[("etc/passwd", "cnb:x:1000:1000::/home/cnb:/bin/sh\n")])).unwrap();
        let run = store.put_bytes(&tar_of(&[("etc/group", "cnb:x:1000:\n")])).unwrap();
        let mut shared = SharedLayers::default();

        let build_fs = read_chain(&store, &[base.clone(), build.clone()], &mut shared).unwrap();
        assert!(passwd(&build_fs).starts_with("cnb:"));
        // The base layer is gone: the run image can only be read from the state kept for it.
        store.remove(&base).unwrap();
        let run_fs = read_chain(&store, &[base.clone(), run.clone()], &mut shared).unwrap();
        assert!(passwd(&run_fs).starts_with("root:"), "the base layer's passwd, not the build image's");
        let err = read_chain(&store, &[base.clone(), run.clone()], &mut SharedLayers::default()).unwrap_err();
        assert!(matches!(err, LayerReadError::Blob(_)), "{err:?}");
        // A chain that only starts like a kept one does not use it.
        let other = store.put_bytes(&tar_of(&[("etc/os-release", "ID=debian\n")])).unwrap();
        let err = read_chain(&store, &[other, base, run], &mut shared).unwrap_err();
        assert!(matches!(err, LayerReadError::Blob(_)), "{err:?}");
    }

    #[test]
    fn shared_states_are_bounded() {
        let mut shared = SharedLayers::default();
        let digests: Vec<Digest> =
            (0..MAX_SHARED_STATES + 3).map(|i| format!("sha256:{:064x}", i).parse().unwrap()).collect();
        for i in 0..digests.len() {
            shared.keep(&digests[..=i], RootFsBuilder::new());
            shared.keep(&digests[..=i], RootFsBuilder::new());
        }
        assert_eq!(shared.states.len(), MAX_SHARED_STATES);
        assert_eq!(shared.start(&digests).0, digests.len());
        assert_eq!(shared.start(&digests[..2]).0, 0, "the oldest states went first");
    }

    #[test]
    fn a_layer_that_is_not_a_tar_is_told_with_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let digest = store.put_bytes(b"not a tar archive, and not gzip either").unwrap();
        let missing: cnbx_oci::Digest = format!("sha256:{}", "0".repeat(64)).parse().unwrap();

        let parse = from_store(
            &store,
            SharedLayers::default().reader(std::slice::from_ref(&digest)),
            vec![digest],
            &[Compression::Gzip],
        )
        .unwrap_err();
        assert!(matches!(parse, LayerReadError::Parse(_)), "{parse:?}");
        let e = BaseLayersError::Read { image: "cnbx.test/build".into(), source: parse };
        let chain = cnbx_fs::error_chain(&e);
        assert!(chain.starts_with("reading the layers of 'cnbx.test/build': "), "{chain}");
        assert!(chain.len() > "reading the layers of 'cnbx.test/build': ".len(), "{chain}");

        let blob = from_store(
            &store,
            SharedLayers::default().reader(std::slice::from_ref(&missing)),
            vec![missing],
            &[Compression::None],
        )
        .unwrap_err();
        assert!(matches!(blob, LayerReadError::Blob(_)), "{blob:?}");
    }
}
