//! The base images' file systems for the validator's layer mode: the few files and directory
//! headers [`RootFs`] keeps, rebuilt from the layer tars in rootfs order.
//!
//! Layers in the local blob store (the local store, an OCI layout) are read from there. Layers
//! on a registry (`--publish`) are streamed: each blob is read once, checked against its
//! descriptor's size and digest as it arrives, decompressed and parsed on a blocking thread,
//! and never stored. Memory stays bounded by a few chunks in flight plus what [`RootFs`] keeps.

use std::io::{self, Read};

use cnbx_oci::image::{LayerBlob, SourceImage};
use cnbx_oci::spec::media_type;
use cnbx_oci::{BlobSource, BlobStore};
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
/// cnbx cannot read (the rules that need the layers are then not verified).
pub(crate) async fn read(images: &Images, image: &SourceImage) -> Result<Option<RootFs>, BaseLayersError> {
    let read_err = |e: LayerReadError| BaseLayersError::Read { image: image.display_name.clone(), source: e };
    let layers = image.layers().map_err(|e| read_err(e.into()))?;
    let Some(kinds) = compressions(&layers) else { return Ok(None) };
    match &image.source {
        BlobSource::Store(store) => {
            let (store, digests) = (store.clone(), layers.iter().map(|l| l.descriptor.digest.clone()).collect());
            tokio::task::spawn_blocking(move || from_store(&store, digests, &kinds))
                .await
                .map_err(|_| read_err(LayerReadError::Stopped))?
                .map(Some)
                .map_err(read_err)
        }
        BlobSource::Registry(_) => stream(images, image, &layers, kinds).await.map(Some),
    }
}

fn from_store(
    store: &BlobStore,
    digests: Vec<cnbx_oci::Digest>,
    kinds: &[Compression],
) -> Result<RootFs, LayerReadError> {
    let mut builder = RootFsBuilder::new();
    for (digest, kind) in digests.iter().zip(kinds) {
        let file = store.open_blob(digest)?;
        add_layer(&mut builder, io::BufReader::new(file), *kind)?;
    }
    Ok(builder.finish())
}

fn add_layer(builder: &mut RootFsBuilder, reader: impl Read, kind: Compression) -> Result<(), LayerReadError> {
    match kind {
        Compression::Gzip => builder.add_layer(flate2::read::MultiGzDecoder::new(reader))?,
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
    layers: &[LayerBlob],
    kinds: Vec<Compression>,
) -> Result<RootFs, BaseLayersError> {
    let read_err = |e: LayerReadError| BaseLayersError::Read { image: image.display_name.clone(), source: e };
    let registry_err = |e| BaseLayersError::Registry { image: image.display_name.clone(), source: Box::new(e) };
    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(CHUNKS_IN_FLIGHT);
    let parser = tokio::task::spawn_blocking(move || parse_stream(rx, &kinds));
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

fn parse_stream(mut rx: tokio::sync::mpsc::Receiver<Chunk>, kinds: &[Compression]) -> Result<RootFs, LayerReadError> {
    let mut builder = RootFsBuilder::new();
    for kind in kinds {
        let mut reader = ChannelReader { rx: &mut rx, buf: bytes::Bytes::new(), ended: false };
        add_layer(&mut builder, &mut reader, *kind)?;
        // The tar ends before its blob does (padding, the rest of the gzip stream).
        reader.drain()?;
    }
    Ok(builder.finish())
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

    #[test]
    fn a_layer_that_is_not_a_tar_is_told_with_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let digest = store.put_bytes(b"not a tar archive, and not gzip either").unwrap();
        let missing: cnbx_oci::Digest = format!("sha256:{}", "0".repeat(64)).parse().unwrap();

        let parse = from_store(&store, vec![digest], &[Compression::Gzip]).unwrap_err();
        assert!(matches!(parse, LayerReadError::Parse(_)), "{parse:?}");
        let e = BaseLayersError::Read { image: "cnbx.test/build".into(), source: parse };
        let chain = cnbx_fs::error_chain(&e);
        assert!(chain.starts_with("reading the layers of 'cnbx.test/build': "), "{chain}");
        assert!(chain.len() > "reading the layers of 'cnbx.test/build': ".len(), "{chain}");

        let blob = from_store(&store, vec![missing], &[Compression::None]).unwrap_err();
        assert!(matches!(blob, LayerReadError::Blob(_)), "{blob:?}");
    }
}
