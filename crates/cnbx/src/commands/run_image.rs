//! `cnbx builder run-image <BUILDER> --app-image <APP>`: the run image (or mirror) a platform
//! should use to build `APP` with `BUILDER` (docs/pack-compatibility.md, *Choosing a run image*).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use cnbx_builder::images::PullPolicy;
use cnbx_builder::labels::{self, BuilderMetadata};
use cnbx_refs::ImageRef;
use cnbx_refs::mirrors::{self, Origin, Reason, Resolution};
use cnbx_refs::user_config::UserConfig;

use super::{BuilderLabels, builder_labels, open_images};
use crate::cli::{RunImageArgs, RunImageFormat};
use crate::printer::Printer;

pub(crate) async fn run(args: RunImageArgs, printer: &Arc<Printer>) -> anyhow::Result<ExitCode> {
    let user = UserConfig::load_default()?;
    let images = open_images(printer, PullPolicy::Never, false, &args.insecure_registries, user.registry_mirrors())?;
    let images = super::choose_local(images, args.local.local, printer, false).await?;
    let (local, remote) = builder_labels(&images, &args.builder).await?;
    let labels = match (local, remote) {
        (BuilderLabels::Present(l, _), _) | (_, Some(BuilderLabels::Present(l, _))) => l,
        (BuilderLabels::Error(e), _) | (_, Some(BuilderLabels::Error(e))) => {
            bail!("reading builder '{}': {e}", args.builder)
        }
        _ => bail!("unable to find builder '{}' locally or remotely", args.builder),
    };
    // Every image name in the label is checked as a reference before it is printed or used.
    let metadata: BuilderMetadata = labels::builder_metadata(&labels, true).with_context(|| {
        if labels.contains_key(labels::BUILDER_METADATA) {
            format!("reading builder '{}'", args.builder)
        } else {
            format!("'{}' is not a builder", args.builder)
        }
    })?;
    let run = metadata
        .run_images
        .as_ref()
        .and_then(|r| r.first())
        .cloned()
        .or_else(|| Some(metadata.stack.run_image.clone()).filter(|r| !r.image.is_empty()))
        .with_context(|| format!("builder '{}' names no run image", args.builder))?;
    let user_mirrors = user.mirrors_for(&run.image).to_vec();
    let resolution = if args.check_access {
        let registry = images.registry().clone();
        mirrors::resolve_with_readability(&run.image, run.mirror_list(), &user_mirrors, &args.app_image, |name| {
            let Ok(reference) = ImageRef::parse(name) else { return false };
            tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(registry.can_read(&reference)))
        })
    } else {
        mirrors::resolve(&run.image, run.mirror_list(), &user_mirrors, &args.app_image)
    }
    .with_context(|| format!("invalid --app-image '{}'", args.app_image))?;
    match args.output {
        RunImageFormat::Json => printer.document(&serde_json::to_string_pretty(&resolution)?),
        RunImageFormat::Text => {
            printer.result(&resolution.image);
            printer.info(&explain(&resolution));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn explain(r: &Resolution) -> String {
    let what = match r.origin {
        Origin::UserConfigured => "a mirror from your configuration",
        Origin::RunImage => "the builder's run image",
        Origin::BuilderMirror => "a mirror listed by the builder",
    };
    let why = match r.reason {
        Reason::SameRegistry => format!("it is on the app image's registry '{}'", r.registry),
        Reason::NoCandidateOnRegistry => format!("no candidate is on the app image's registry '{}'", r.registry),
        Reason::NoneReadable => "no candidate could be read".to_owned(),
    };
    format!("Chose {what}: {why}")
}
