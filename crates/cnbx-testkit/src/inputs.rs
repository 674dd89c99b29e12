//! Large builder inputs made from files already on the machine: buildpacks and a lifecycle
//! of a few tens of MiB, deterministic for a given machine (files are taken in byte order of
//! their paths; no random bytes), so that compression behaves as on real content.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Where the payload files come from.
const SOURCES: [&str; 2] = ["/usr/lib", "/usr/share"];

/// Regular files under the [`SOURCES`], in byte order of their paths, each under 4 MiB; the
/// symbolic links and special files are skipped.
fn system_files() -> impl Iterator<Item = (PathBuf, u64)> {
    SOURCES.iter().flat_map(|root| {
        let mut files = Vec::new();
        walk(Path::new(root), &mut files);
        files
    })
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, u64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        if meta.is_dir() {
            walk(&path, out);
        } else if meta.is_file() && meta.len() > 0 && meta.len() < 4 << 20 && std::fs::File::open(&path).is_ok() {
            out.push((path, meta.len()));
        }
    }
}

/// Hands system files to `each`, in order, until at least `bytes` of them were handed over,
/// after passing over the first `skip` bytes' worth of files. Returns the bytes handed over.
fn take_system_files(bytes: u64, skip: u64, mut each: impl FnMut(&Path) -> Result<()>) -> Result<u64> {
    let (mut skipped, mut taken) = (0, 0);
    for (path, size) in system_files() {
        if taken >= bytes {
            return Ok(taken);
        }
        if skipped < skip {
            skipped += size;
            continue;
        }
        each(&path).with_context(|| format!("copying {}", path.display()))?;
        taken += size;
    }
    if taken < bytes {
        bail!("only {taken} bytes of files under {SOURCES:?}; {bytes} wanted");
    }
    Ok(taken)
}

/// Copies system files into `dir` (keeping their paths below `/`) until at least `bytes`
/// were copied, skipping the first `skip` bytes' worth of files (so that two payloads
/// differ). Returns the bytes copied.
pub fn copy_system_files(dir: &Path, bytes: u64, skip: u64) -> Result<u64> {
    take_system_files(bytes, skip, |path| {
        let dest = dir.join(path.strip_prefix("/").unwrap_or(path));
        std::fs::create_dir_all(dest.parent().unwrap_or(dir))?;
        std::fs::copy(path, &dest)?;
        Ok(())
    })
}

/// Writes into `file` the concatenation of system files, at least `bytes` of them (after
/// skipping `skip` bytes' worth of files). Returns its size.
pub fn concatenated_system_files(file: &Path, bytes: u64, skip: u64) -> Result<u64> {
    let mut out = std::fs::File::create(file)?;
    take_system_files(bytes, skip, |path| Ok(out.write_all(&std::fs::read(path)?)?))
}

/// A buildpack directory `id@version` (API 0.10, linux/amd64 and linux/arm64) in `dir`,
/// with `payload` bytes of system files under `payload/` (after skipping `skip` bytes'
/// worth).
pub fn buildpack(dir: &Path, id: &str, version: &str, payload: u64, skip: u64) -> Result<()> {
    crate::hostile::write_buildpack_dir(dir, id, version)?;
    let toml = crate::hostile::buildpack_toml(id, version);
    std::fs::write(dir.join("buildpack.toml"), format!("{toml}\n[[targets]]\n  os = \"linux\"\n  arch = \"arm64\"\n"))?;
    if payload > 0 {
        copy_system_files(&dir.join("payload"), payload, skip)?;
    }
    Ok(())
}

/// A lifecycle directory (`lifecycle.toml` and `lifecycle/<phase>`, from the offline
/// stand-in lifecycle in `testdata/lifecycle/src`) whose `analyzer` is followed by `payload`
/// bytes of system files.
pub fn lifecycle(dir: &Path, payload: u64) -> Result<()> {
    let src = crate::workspace_root().join("testdata/lifecycle/src");
    std::fs::create_dir_all(dir.join("lifecycle"))?;
    std::fs::copy(src.join("lifecycle.toml"), dir.join("lifecycle.toml"))?;
    for entry in std::fs::read_dir(&src)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == "lifecycle.toml" {
            continue;
        }
        std::fs::copy(entry.path(), dir.join("lifecycle").join(&name))?;
    }
    if payload > 0 {
        let extra = dir.join("payload.tmp");
        concatenated_system_files(&extra, payload, 0)?;
        let mut analyzer = std::fs::OpenOptions::new().append(true).open(dir.join("lifecycle/analyzer"))?;
        analyzer.write_all(&std::fs::read(&extra)?)?;
        std::fs::remove_file(extra)?;
    }
    Ok(())
}
