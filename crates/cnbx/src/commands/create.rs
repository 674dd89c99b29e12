//! `cnbx builder create <IMAGE> --config <builder.toml>`.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use cnbx_builder::create::{CreateError, CreateRequest, DestinationKind, create};
use cnbx_refs::user_config::UserConfig;

use super::dry_run::DryRunJson;
use crate::cli::{self, CreateArgs, ReportFormat};
use crate::commands::open_images;
use crate::printer::Printer;

pub(crate) async fn run(args: CreateArgs, printer: &Arc<Printer>) -> anyhow::Result<ExitCode> {
    let Some(config_path) = args.config else {
        bail!("Please provide a builder config path, using --config.");
    };
    // As pack: only the flag conflicts with --publish (which reads registries whatever the
    // policy).
    if args.publish && args.pull_policy == Some(cli::PullPolicy::Never) {
        bail!(
            "--publish and --pull-policy never cannot be used together. The --publish flag requires the use of \
             remote images."
        );
    }
    let user = UserConfig::load_default()?;
    let policy = super::resolve_pull_policy(args.pull_policy, &user)?;
    let build_config_dir = build_config_dir(std::env::var_os(BUILD_CONFIG_DIR_ENV))?;
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
    let images = open_images(printer, policy, args.publish, &args.insecure_registries, user.registry_mirrors())?;
    let images = if args.dry_run { images.read_only() } else { images };
    let images = super::choose_local(images, args.local.local, printer, true).await?;
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
        allow_unreachable_run_images: args.allow_unreachable_run_images,
        build_config_dir,
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
    let id = if created.kind == DestinationKind::Engine { "image ID " } else { "" };
    printer.result(&format!(
        "Successfully created builder image '{}' {} ({id}{}, {})",
        created.destination, created.into, created.digest, platforms
    ));
    if let Some(push) = &created.push {
        printer.info(&format!(
            "Pushed {} blob(s), mounted {}, {} already present",
            push.uploaded, push.mounted, push.skipped
        ));
    }
    printer.info(&created.tip);
    Ok(ExitCode::SUCCESS)
}

/// The environment variable pack reads for where the build-config env files go.
const BUILD_CONFIG_DIR_ENV: &str = "CNB_BUILD_CONFIG_DIR";

/// Where the build-config directory goes in the builder: `CNB_BUILD_CONFIG_DIR` when set and
/// not empty (as pack honours it), else `/cnb/build-config`. It must be an absolute path of the
/// image without `.` or `..` components; a trailing `/` and repeated `/` are dropped.
fn build_config_dir(value: Option<std::ffi::OsString>) -> anyhow::Result<String> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(cnbx_builder::assemble::files::BUILD_CONFIG_DIR.to_owned());
    };
    let invalid = |why: &str| {
        anyhow::anyhow!(
            "invalid {BUILD_CONFIG_DIR_ENV} '{}': {why}; use an absolute path inside the image, such as /cnb/build-config",
            cnbx_fs::excerpt(&value.to_string_lossy())
        )
    };
    let text = value.to_str().ok_or_else(|| invalid("it is not UTF-8"))?;
    if !text.starts_with('/') {
        return Err(invalid("it is not an absolute path"));
    }
    let parts: Vec<&str> = text.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err(invalid("it is the root directory"));
    }
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(invalid("it has a '.' or '..' component"));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid("it has a control character"));
    }
    Ok(format!("/{}", parts.join("/")))
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
    fn the_build_config_dir_is_an_absolute_image_path() {
        let dir = |v: Option<&str>| build_config_dir(v.map(Into::into)).map_err(|e| e.to_string());
        assert_eq!(dir(None).unwrap(), "/cnb/build-config");
        assert_eq!(dir(Some("")).unwrap(), "/cnb/build-config");
        assert_eq!(dir(Some("/etc/cnb//build-config/")).unwrap(), "/etc/cnb/build-config");
        assert!(dir(Some("cnb/build-config")).unwrap_err().contains("not an absolute path"));
        assert!(dir(Some("/cnb/../etc")).unwrap_err().contains("'..'"));
        assert!(dir(Some("/")).unwrap_err().contains("root directory"));
    }

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
