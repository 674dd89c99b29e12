//! `POST /images/load`: an image written into the engine as a docker-archive made on the fly.
//!
//! The archive is what [`crate::docker_archive::write_docker_archive`] writes, produced on a
//! blocking thread into a channel of a few 256 KiB chunks that the request's body takes from:
//! it is never held in memory whole nor written to disk. Each layer blob is hashed as it is
//! copied, so a changed or corrupt blob stops the stream; the request is then aborted (the
//! body ends with an error, not with the end of the tar), and the engine loads nothing.
//!
//! **Layers the engine holds are left out.** The Docker daemon reads a layer's file only when
//! it does not hold the layer *chain* up to it; Podman reads none of the layers it holds (by
//! diffID) but wants every layer file to be present. So the layers of the longest leading
//! chain that the engine is known to hold ([`HeldLayers`], from the inspect of images such as
//! the build image) are sent as empty files, which neither engine reads. Should the engine
//! have lost them in the meantime, it refuses the load (an empty file is not the layer), and
//! the load is made once more with every layer.
//!
//! **Nothing is tagged until the whole image is there.** Both engines read the whole upload
//! before they store anything (`manifest.json`, which names the tags, is the archive's last
//! file but one) and tag the image last; an interrupted upload leaves every tag where it was.
//! The answer is read line by line (`quiet=0`, so that the engine's progress keeps the
//! connection alive), and an error in it fails the load even though the status was 200.
//! Afterwards every tag is inspected: it must hold the layers sent.

use std::collections::HashSet;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cnbx_refs::ImageRef;
use futures_util::StreamExt;

use super::{Engine, EngineError};
use crate::digest::Digest;
use crate::docker_archive::DockerArchiveError;
use crate::image::ImageToWrite;
use crate::progress::{Reporter, ReporterExt, Task, TaskKind};

/// Size of the chunks the archive is handed to the request in.
const CHUNK: usize = 256 * 1024;

/// The longest line of the load's answer read.
const MAX_ANSWER_LINE: usize = 1024 * 1024;

/// The most bytes of the load's answer read.
const MAX_ANSWER: u64 = 64 * 1024 * 1024;

/// Layer chains the engine holds: the diffIDs, base first, of images it has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeldLayers {
    chains: Vec<Vec<Digest>>,
}

impl HeldLayers {
    /// Nothing known: every layer is sent.
    pub fn none() -> Self {
        Self::default()
    }

    /// The chains given (each an image's diffIDs, base first).
    pub fn from_chains(chains: impl IntoIterator<Item = Vec<Digest>>) -> Self {
        Self { chains: chains.into_iter().collect() }
    }

    /// How many leading layers of `diff_ids` the engine holds as a chain (the longest common
    /// start with a known chain).
    pub fn common_prefix(&self, diff_ids: &[Digest]) -> usize {
        self.chains
            .iter()
            .map(|chain| chain.iter().zip(diff_ids).take_while(|(a, b)| a == b).count())
            .max()
            .unwrap_or(0)
    }
}

/// What a load did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOutcome {
    /// The image's ID in the engine (`sha256:<hex>`, as its inspect gives it).
    pub image_id: String,
    /// The layers sent whole.
    pub layers_sent: usize,
    /// The layers left out, the engine holding them.
    pub layers_left_out: usize,
    /// The bytes of the archive sent.
    pub bytes_sent: u64,
    /// Whether the engine refused the archive without the layers it was thought to hold, and
    /// it was sent again whole.
    pub resent_whole: bool,
}

/// When the load last moved (bytes sent or answered), in milliseconds since it started.
struct Activity {
    start: Instant,
    last: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self { start: Instant::now(), last: AtomicU64::new(0) }
    }

    fn touch(&self) {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(now, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(now.saturating_sub(self.last.load(Ordering::Relaxed)))
    }
}

/// The archive's bytes, handed to the request in chunks.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
    sent: u64,
    activity: Arc<Activity>,
    reporter: Arc<dyn Reporter>,
    task: String,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        let n = chunk.len() as u64;
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the engine stopped reading the load"))?;
        self.sent += n;
        self.activity.touch();
        self.reporter.advance(&self.task, n);
        Ok(())
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Engine {
    /// The layer chains of the images `names` (references or IDs) that the engine has; the
    /// names it does not have are left out.
    pub async fn held_layers(&self, names: &[&str]) -> Result<HeldLayers, EngineError> {
        let mut chains = Vec::new();
        for name in names {
            if let Some(image) = self.inspect(name).await? {
                chains.push(image.diff_ids);
            }
        }
        Ok(HeldLayers::from_chains(chains))
    }

    /// Loads `image` into the engine under `tags` (see the module docs), leaving out the
    /// leading layers `held` says the engine holds. Every layer must be in a local blob
    /// store. Reports one [`TaskKind::Push`] task for the bytes sent.
    pub async fn load(
        &self,
        image: &ImageToWrite,
        tags: &[ImageRef],
        held: &HeldLayers,
        reporter: Arc<dyn Reporter>,
    ) -> Result<LoadOutcome, EngineError> {
        let diff_ids: Vec<Digest> = image.layers.iter().map(|l| l.diff_id.clone()).collect();
        let left_out = held.common_prefix(&diff_ids);
        let (bytes_sent, resent_whole, sent_left_out) =
            match self.load_once(image, tags, left_out, Arc::clone(&reporter)).await {
                Ok(n) => (n, false, left_out),
                Err(EngineError::LoadFailed { message, .. }) if left_out > 0 => {
                    reporter.debug(&format!(
                    "{} refused the image without the {left_out} layer(s) it was thought to hold ({message}); sending \
                     every layer",
                    self.describe()
                ));
                    (self.load_once(image, tags, 0, reporter).await?, true, 0)
                }
                Err(e) => return Err(e),
            };
        let image_id = self.check_loaded(image, tags, &diff_ids).await?;
        Ok(LoadOutcome {
            image_id,
            layers_sent: image.layers.len() - sent_left_out,
            layers_left_out: sent_left_out,
            bytes_sent,
            resent_whole,
        })
    }

    /// Every tag (or the ID, without tags) now holds the layers sent; returns the image ID.
    async fn check_loaded(
        &self,
        image: &ImageToWrite,
        tags: &[ImageRef],
        diff_ids: &[Digest],
    ) -> Result<String, EngineError> {
        let config_id = image.config.digest.to_string();
        let names: Vec<String> = if tags.is_empty() {
            vec![config_id.clone()]
        } else {
            tags.iter().map(|t| t.with_tag(t.tag().unwrap_or(cnbx_refs::reference::DEFAULT_TAG)).familiar()).collect()
        };
        let mut id = config_id;
        for name in &names {
            let not_loaded = |reason: &str| EngineError::NotLoaded {
                engine: self.describe(),
                tag: name.clone(),
                reason: reason.to_owned(),
            };
            let Some(found) = self.inspect(name).await? else { return Err(not_loaded("it is not there")) };
            if found.diff_ids != diff_ids {
                return Err(not_loaded("its layers differ"));
            }
            id = found.id;
        }
        Ok(id)
    }

    /// One upload of the archive, leaving out the first `left_out` layers; returns the bytes
    /// sent.
    async fn load_once(
        &self,
        image: &ImageToWrite,
        tags: &[ImageRef],
        left_out: usize,
        reporter: Arc<dyn Reporter>,
    ) -> Result<u64, EngineError> {
        let what = "the load of the image";
        // A blob is left out only if no layer that is sent uses it.
        let needed: HashSet<Digest> = image.layers[left_out..].iter().map(|l| l.descriptor.digest.clone()).collect();
        let total: u64 = image
            .layers
            .iter()
            .filter(|l| needed.contains(&l.descriptor.digest))
            .map(|l| l.descriptor.size)
            .sum::<u64>()
            + image.config.bytes.len() as u64;
        let task = Task {
            id: format!("load into {}", self.endpoint().url()),
            label: format!("loading into {}", self.describe()),
            kind: TaskKind::Push,
            total: Some(total),
        };
        reporter.start(&task);

        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, io::Error>>(4);
        let activity = Arc::new(Activity::new());
        let producer = {
            let (image, tags, activity, reporter, task_id) =
                (image.clone(), tags.to_vec(), Arc::clone(&activity), Arc::clone(&reporter), task.id.clone());
            tokio::task::spawn_blocking(move || -> Result<u64, DockerArchiveError> {
                let writer = ChannelWriter {
                    tx: tx.clone(),
                    buf: Vec::with_capacity(CHUNK),
                    sent: 0,
                    activity,
                    reporter,
                    task: task_id,
                };
                let placeholder = |l: &crate::image::LayerBlob| !needed.contains(&l.descriptor.digest);
                let name = std::path::Path::new("the load stream");
                let written = crate::docker_archive::write_archive_to(writer, name, &tags, &image, &placeholder)
                    .and_then(|mut w| {
                        w.flush().map_err(|e| DockerArchiveError::Io {
                            path: name.to_path_buf(),
                            what: "sending",
                            source: e,
                        })?;
                        Ok(w.sent)
                    });
                if written.is_err() {
                    // Abort the request: the engine must see a broken upload, not an archive that ends.
                    let _ = tx.blocking_send(Err(io::Error::other("cnbx stopped the load")));
                }
                written
            })
        };
        let body = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        let request = self
            .inner
            .http
            .post(self.url("/images/load"))
            .query(&[("quiet", "0")])
            .header(reqwest::header::CONTENT_TYPE, "application/x-tar")
            .body(reqwest::Body::wrap_stream(body));

        let stall = self.inner.options.stall;
        let exchange = async {
            let response = request.send().await.map_err(|e| self.transport_error(&e, what))?;
            activity.touch();
            if !response.status().is_success() {
                return Err(match self.refused(response, what).await {
                    EngineError::Refused { message, .. } => {
                        EngineError::LoadFailed { engine: self.describe(), message }
                    }
                    other => other,
                });
            }
            self.read_answer(response, &activity, what).await
        };
        let watchdog = async {
            loop {
                tokio::time::sleep(Duration::from_millis(200).min(stall)).await;
                if activity.idle() >= stall {
                    return;
                }
            }
        };
        let exchanged = tokio::select! {
            r = exchange => r,
            () = watchdog => Err(EngineError::Timeout { engine: self.describe(), what: what.to_owned(), after: stall }),
        };
        reporter.finish(&task.id);
        let produced = producer.await;
        match (exchanged, produced) {
            // A blob that cannot be read, or is not what it should be, is why the load stopped.
            (_, Ok(Err(e @ DockerArchiveError::Blob { .. }))) => {
                Err(EngineError::Stream { engine: self.describe(), source: Box::new(e) })
            }
            (Err(e), _) => Err(e),
            (Ok(()), Ok(Ok(sent))) => Ok(sent),
            (Ok(()), Ok(Err(e))) => Err(EngineError::Stream { engine: self.describe(), source: Box::new(e) }),
            (Ok(()), Err(join)) => Err(EngineError::Broken {
                engine: self.describe(),
                what: what.to_owned(),
                reason: format!("the stream's writer failed: {join}"),
            }),
        }
    }

    /// Reads the load's answer: JSON messages, one per line; an `error` fails the load.
    async fn read_answer(
        &self,
        response: reqwest::Response,
        activity: &Activity,
        what: &str,
    ) -> Result<(), EngineError> {
        let stall = self.inner.options.stall;
        let mut stream = response.bytes_stream();
        let mut pending: Vec<u8> = Vec::new();
        let mut total = 0u64;
        let mut error: Option<String> = None;
        loop {
            let chunk = match tokio::time::timeout(stall, stream.next()).await {
                Err(_) => {
                    return Err(EngineError::Timeout { engine: self.describe(), what: what.to_owned(), after: stall });
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(self.transport_error(&e, what)),
                Ok(Some(Ok(chunk))) => chunk,
            };
            activity.touch();
            total += chunk.len() as u64;
            if total > MAX_ANSWER {
                return Err(self.protocol(what, format!("the answer is larger than {MAX_ANSWER} bytes")));
            }
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                error = error.or_else(|| answer_error(&line));
            }
            if pending.len() > MAX_ANSWER_LINE {
                return Err(self.protocol(what, format!("a line of the answer is longer than {MAX_ANSWER_LINE} bytes")));
            }
        }
        error = error.or_else(|| answer_error(&pending));
        match error {
            Some(message) => Err(EngineError::LoadFailed { engine: self.describe(), message }),
            None => Ok(()),
        }
    }
}

/// The error a line of the load's answer reports, if it reports one.
fn answer_error(line: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(line).ok()?.trim();
    if text.is_empty() {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let has_error =
        value.get("error").is_some_and(|e| !e.is_null()) || value.get("errorDetail").is_some_and(|e| !e.is_null());
    has_error.then(|| super::error_message(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::of(&[n])
    }

    #[test]
    fn the_longest_held_chain_is_left_out() {
        let held = HeldLayers::from_chains([vec![d(1), d(2)], vec![d(1), d(2), d(3), d(9)], vec![d(5)]]);
        assert_eq!(held.common_prefix(&[d(1), d(2), d(3), d(4)]), 3);
        assert_eq!(held.common_prefix(&[d(2), d(3)]), 0);
        assert_eq!(HeldLayers::none().common_prefix(&[d(1)]), 0);
    }

    #[test]
    fn errors_in_the_answer_are_found() {
        assert_eq!(
            answer_error(br#"{"errorDetail":{"message":"Error processing tar file(exit status 1): unexpected EOF"},"error":"Error processing tar file(exit status 1): unexpected EOF"}"#).as_deref(),
            Some("Error processing tar file(exit status 1): unexpected EOF")
        );
        assert_eq!(answer_error(br#"{"stream":"Loaded image: cnbx.test/b:1\n"}"#), None);
        assert_eq!(answer_error(b"  \n"), None);
    }
}
