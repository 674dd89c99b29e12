//! `cnbx builder create <IMAGE> --config <builder.toml>`.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use cnbx_builder::create::{CreateError, CreateRequest, create};

use super::dry_run::DryRunJson;
use crate::cli::{CreateArgs, ReportFormat};
use crate::commands::open_images;
use crate::printer::Printer;

pub(crate) async fn run(args: CreateArgs, printer: &Arc<Printer>) -> anyhow::Result<ExitCode> {
    let Some(config_path) = args.config else {
        bail!("Please provide a builder config path, using --config.");
    };
    let policy = super::pull_policy(args.pull_policy);
    if args.publish && policy == cnbx_builder::images::PullPolicy::Never {
        bail!(
            "--publish and --pull-policy never cannot be used together. The --publish flag requires the use of \
             remote images."
        );
    }
    let labels = parse_labels(&args.labels)?;
    let targets = super::parse_targets(&args.targets, printer)?;
    let flatten = parse_flatten(&args.flatten)?;
    let config = match cnbx_config::load(&config_path) {
        Ok(c) => c,
        Err(e) => {
            for w in e.warnings() {
                printer.warn(w);
            }
            return Err(super::with_diagnostic(e.to_string(), e.diagnostic()));
        }
    };
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let images = open_images(printer, policy, args.publish, &args.insecure_registries)?;
    let images = if args.dry_run { images.read_only() } else { images };
    let request = CreateRequest {
        destination: args.image.clone(),
        cwd,
        config,
        publish: args.publish,
        labels,
        targets,
        flatten,
        tags: args.tags.clone(),
        append_image_name_suffix: args.append_image_name_suffix,
        creator_version: env!("CARGO_PKG_VERSION").to_owned(),
        skip_layer_checks: args.skip_layer_checks,
    };
    if args.dry_run {
        let report = cnbx_builder::create::dry_run(&images, &request).await.map_err(create_error)?;
        match args.output.unwrap_or(ReportFormat::Human) {
            ReportFormat::Json => printer.document(&super::report::to_json(&DryRunJson::new(&report))?),
            ReportFormat::Human => printer.result(&super::dry_run::human(&report)),
        }
        return match report.failure {
            Some(failure) => Err(create_error(failure)),
            None => Ok(ExitCode::SUCCESS),
        };
    }
    let created = create(&images, &request).await.map_err(create_error)?;
    let platforms = created.platforms.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    printer.result(&format!(
        "Successfully created builder image '{}' ({}, {})",
        created.destination, created.digest, platforms
    ));
    if let Some(push) = &created.push {
        printer.info(&format!(
            "Pushed {} blob(s), mounted {}, {} already present",
            push.uploaded, push.mounted, push.skipped
        ));
    }
    let dest = &created.destination;
    let tip = if let Some(rest) = dest.strip_prefix("docker-archive:") {
        let file = rest.split(':').next().unwrap_or(rest);
        format!("Tip: load it into Docker with 'docker load -i {file}', then use it with 'pack build --builder'")
    } else if dest.starts_with("oci:") {
        format!("Tip: push it with 'skopeo copy --all {dest} docker://<registry>/<name>' to use it with pack or kpack")
    } else {
        format!("Tip: Run 'pack build <image-name> --builder {dest}' to use this builder")
    };
    printer.info(&tip);
    Ok(ExitCode::SUCCESS)
}

/// A create error as printed: builder.toml errors with their diagnostic.
fn create_error(e: CreateError) -> anyhow::Error {
    match e {
        CreateError::Config(e) => super::with_diagnostic(e.to_string(), e.diagnostic()),
        e => e.into(),
    }
}

/// `--label KEY=VALUE`, also as comma-separated lists (pack's string-to-string flag).
fn parse_labels(values: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for value in values {
        for item in value.split(',') {
            let Some((k, v)) = item.split_once('=') else {
                bail!("invalid --label '{item}': write KEY=VALUE");
            };
            if k.is_empty() {
                bail!("invalid --label '{item}': the key is empty; write KEY=VALUE");
            }
            out.insert(k.to_owned(), v.to_owned());
        }
    }
    Ok(out)
}

/// `--flatten id@version,id@version` (one group per occurrence), with pack's messages.
fn parse_flatten(values: &[String]) -> anyhow::Result<Vec<Vec<String>>> {
    let mut groups = Vec::new();
    for value in values {
        let mut group = Vec::new();
        for item in value.split(',') {
            let parts: Vec<&str> = item.split('@').collect();
            let [id, version] = parts.as_slice() else {
                bail!(
                    "invalid format {item}; please use '<buildpack-id>@<buildpack-version>' to add buildpacks to be \
                     flattened"
                );
            };
            let (id, version) = (id.trim(), version.trim());
            if id.is_empty() || version.is_empty() {
                bail!("invalid format {item}; '<buildpack-id>' and '<buildpack-version>' must be specified");
            }
            group.push(format!("{id}@{version}"));
        }
        groups.push(group);
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_flatten_parse_like_pack() {
        let l = parse_labels(&["a=1,b=x=y".into(), "c=".into()]).unwrap();
        assert_eq!(l.get("b").map(String::as_str), Some("x=y"));
        assert_eq!(l.get("c").map(String::as_str), Some(""));
        assert!(parse_labels(&["novalue".into()]).is_err());
        let f = parse_flatten(&["a@1, b@2".into(), "c@3".into()]).unwrap();
        assert_eq!(f, vec![vec!["a@1".to_owned(), "b@2".to_owned()], vec!["c@3".to_owned()]]);
        assert!(parse_flatten(&["a".into()]).unwrap_err().to_string().contains("please use"));
        assert!(parse_flatten(&["@1".into()]).unwrap_err().to_string().contains("must be specified"));
    }
}
