//! Measures the one-pass layer writer on a real directory: cold (empty cache) and warm
//! (cache hit), optionally split into several layers built in parallel.
//!
//! ```text
//! cargo run --release -p cnbx-oci --example layer_throughput -- [DIR] [--cap-mib N] [--level N] [--split N]
//! ```
//!
//! DIR defaults to `/usr/lib`; files are taken in walk order until `--cap-mib` (200) MiB of
//! content is reached. Entries are mapped as pack maps a buildpack (renamed under the
//! directory's path, uid/gid 0, normalised mtime), so the numbers include header encoding.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use cnbx_oci::cache::build_layers;
use cnbx_oci::layer::{EntryData, LayerEntry, LayerRecipe, walk_dir};
use cnbx_oci::progress::NullReporter;
use cnbx_oci::tarball::TarTime;
use cnbx_oci::{BlobStore, LayerCache};

struct Args {
    dir: PathBuf,
    cap: u64,
    level: u32,
    split: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { dir: PathBuf::from("/usr/lib"), cap: 200 << 20, level: 6, split: 1 };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<u64, String> {
            it.next().and_then(|v| v.parse().ok()).ok_or_else(|| format!("{name} needs a number"))
        };
        match a.as_str() {
            "--cap-mib" => args.cap = num("--cap-mib")? << 20,
            "--level" => args.level = u32::try_from(num("--level")?).map_err(|e| e.to_string())?,
            "--split" => args.split = usize::try_from(num("--split")?.max(1)).map_err(|e| e.to_string())?,
            "-h" | "--help" => {
                return Err("usage: layer_throughput [DIR] [--cap-mib N] [--level N] [--split N]".into());
            }
            dir => args.dir = PathBuf::from(dir),
        }
    }
    Ok(args)
}

/// Walks `dir`, keeping entries until `cap` bytes of readable file content.
fn collect(dir: &std::path::Path, cap: u64) -> (Vec<LayerEntry>, u64, usize) {
    let prefix = dir.to_string_lossy().trim_end_matches('/').to_owned();
    let mut entries = Vec::new();
    let (mut total, mut skipped) = (0u64, 0usize);
    for walked in walk_dir(dir) {
        let Ok(w) = walked else {
            skipped += 1;
            continue;
        };
        let mut e = w.into_layer_entry();
        if let EntryData::File { path, .. } = &e.data
            && std::fs::File::open(path).is_err()
        {
            skipped += 1;
            continue;
        }
        e.header.path = format!("{prefix}/{}", e.header.path);
        e.header.uid = 0;
        e.header.gid = 0;
        e.header.mtime = TarTime::NORMALIZED;
        total += e.header.data_len();
        entries.push(e);
        if total >= cap {
            break;
        }
    }
    (entries, total, skipped)
}

fn recipes(entries: Vec<LayerEntry>, split: usize, level: u32) -> Vec<LayerRecipe> {
    let mut out: Vec<LayerRecipe> =
        (0..split).map(|i| LayerRecipe::new(format!("part {i}")).with_compression_level(level)).collect();
    let total: u64 = entries.iter().map(|e| e.header.data_len()).sum();
    let per = total.div_ceil(split as u64).max(1);
    let mut acc = 0u64;
    for e in entries {
        let i = usize::try_from(acc / per).unwrap_or(split - 1).min(split - 1);
        acc += e.header.data_len();
        out[i].push(e);
    }
    out
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let work = match tempfile::tempdir() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("creating a temporary directory: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (store, cache) = match (BlobStore::open(work.path().join("store")), LayerCache::open(work.path().join("cache")))
    {
        (Ok(s), Ok(c)) => (s, c),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("opening the store: {e}");
            return ExitCode::FAILURE;
        }
    };

    println!(
        "settings    {}, cap {:.0} MiB, gzip level {}, {} layer(s), {} rayon threads",
        args.dir.display(),
        mib(args.cap),
        args.level,
        args.split,
        rayon::current_num_threads()
    );

    // Each pass walks the directory again (a warm run stats every file to compute the
    // cache keys), then builds or finds the layers.
    for (label, pass) in [("cold", 0), ("warm", 1)] {
        let t = Instant::now();
        let (entries, input, skipped) = collect(&args.dir, args.cap);
        let walk_secs = t.elapsed().as_secs_f64();
        if pass == 0 {
            println!(
                "source      {} entries, {:.1} MiB of file content, {} unreadable skipped",
                entries.len(),
                mib(input),
                skipped
            );
        }
        let recipes = recipes(entries, args.split, args.level);
        let results = build_layers(&recipes, &store, Some(&cache), &NullReporter);
        let secs = t.elapsed().as_secs_f64();
        let mut tar_bytes = 0;
        let mut gz_bytes = 0;
        for (i, r) in results.iter().enumerate() {
            match r {
                Ok(info) => {
                    tar_bytes += info.uncompressed_size;
                    gz_bytes += info.descriptor.size;
                    if pass == 0 {
                        println!(
                            "layer {i}     diffID {}  blob {}  tar {:.1} MiB  gzip {:.1} MiB  ratio {:.3}",
                            info.diff_id,
                            info.descriptor.digest.short(),
                            mib(info.uncompressed_size),
                            mib(info.descriptor.size),
                            info.descriptor.size as f64 / info.uncompressed_size as f64
                        );
                    }
                }
                Err(e) => {
                    eprintln!("layer {i} failed: {e}");
                    let mut src = std::error::Error::source(e);
                    while let Some(s) = src {
                        eprintln!("  caused by: {s}");
                        src = s.source();
                    }
                    return ExitCode::FAILURE;
                }
            }
        }
        println!(
            "{label}        {:.3}s (walk {:.3}s)  {:.1} MiB/s of tar input  (tar {:.1} MiB → gzip {:.1} MiB)",
            secs,
            walk_secs,
            mib(tar_bytes) / secs,
            mib(tar_bytes),
            mib(gz_bytes)
        );
    }
    ExitCode::SUCCESS
}
