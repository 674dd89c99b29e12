//! Command-line definitions (clap derive). Doc comments are the help text: the first line is
//! the short help, the rest the long help.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

/// Create and inspect Cloud Native Buildpacks builder images.
///
/// cnbx is a fast, daemonless, pack-compatible subset of the `pack` CLI: it reads the same
/// builder.toml and writes the same builder image, to a local store, an OCI layout, a
/// docker-archive tar or a registry, without a Docker daemon.
#[derive(Debug, Parser)]
#[command(name = "cnbx", version, propagate_version = true, max_term_width = 100)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Flags accepted by every command.
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// Show only warnings and errors
    #[arg(short, long, global = true, conflicts_with = "verbose", help_heading = "Global options")]
    pub(crate) quiet: bool,

    /// Show debug messages (and no progress bars)
    #[arg(short, long, global = true, help_heading = "Global options")]
    pub(crate) verbose: bool,

    /// Disable colour and progress bars (also: the NO_COLOR environment variable)
    #[arg(long, global = true, help_heading = "Global options")]
    pub(crate) no_color: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create and inspect builder images
    #[command(subcommand, visible_alias = "builders")]
    Builder(BuilderCommand),

    /// Check base images against the Cloud Native Buildpacks platform spec
    #[command(subcommand)]
    BaseImage(BaseImageCommand),

    /// Manage the cnbx user configuration (CNBX_HOME/config.toml)
    #[command(subcommand)]
    Config(ConfigCommand),

    /// Check and clean the local image store and caches (CNBX_HOME)
    #[command(subcommand)]
    Store(StoreCommand),

    /// Print a shell completion script
    ///
    /// Writes the completion script for SHELL to standard output. Install it where your shell
    /// looks for completions, for example:
    ///
    ///   cnbx completion bash > ~/.local/share/bash-completion/completions/cnbx
    ///   cnbx completion zsh > ~/.zfunc/_cnbx        (with ~/.zfunc in $fpath)
    ///   cnbx completion fish > ~/.config/fish/completions/cnbx.fish
    ///
    /// `make install` installs the bash, zsh and fish scripts and the man pages.
    Completion(CompletionArgs),

    /// Write the man pages
    ///
    /// Without --dir, prints the cnbx(1) page to standard output (`cnbx manpage | man -l -`).
    /// With --dir, writes one page per command into DIR: cnbx.1, cnbx-builder.1,
    /// cnbx-builder-create.1, ...
    Manpage(ManpageArgs),
}

/// Arguments of `cnbx completion`.
#[derive(Debug, Args)]
pub(crate) struct CompletionArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

/// Arguments of `cnbx manpage`.
#[derive(Debug, Args)]
pub(crate) struct ManpageArgs {
    /// Write every page into this directory (created if missing) instead of printing cnbx(1)
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
}

/// `cnbx base-image` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum BaseImageCommand {
    /// Check build and run images against the platform spec, as builder create would
    ///
    /// Applies the rules `builder create` checks its base images with (docs/base-image-rules.md)
    /// to a build image (--build), run images (--run, with --mirror for the mirrors of one run
    /// image), or a build image and its run images together (then the pairs too: os,
    /// architecture, variant, distro, users, stacks), for every platform of an image index or
    /// those chosen with --target.
    ///
    /// IMAGE is a registry name (looked up in the local store first, per --pull-policy) or
    /// `oci:<DIR>[:<TAG>]`. By default the layers are read (streamed from registries, never
    /// stored) for the user, group, home directory and os-release rules, once per image
    /// digest; the results are remembered, so checking the same images again is instant.
    ///
    /// Prints one line per finding and a summary (or a JSON document with --output json, see
    /// docs/json-output.md). Exits 0 when no MUST rule fails, 1 when one does; with --strict,
    /// SHOULD findings (warnings) fail too.
    Check(CheckArgs),
}

/// Output formats of `base-image check` and `builder create --dry-run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReportFormat {
    /// Lines for people
    Human,
    /// A JSON document (docs/json-output.md)
    Json,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("images").required(true).multiple(true).args(["build", "runs"])))]
pub(crate) struct CheckArgs {
    /// The build image (NAME or oci:<DIR>[:<TAG>])
    #[arg(long, value_name = "IMAGE")]
    pub(crate) build: Option<String>,

    /// A run image (repeatable; NAME or oci:<DIR>[:<TAG>])
    #[arg(long = "run", value_name = "IMAGE", action = clap::ArgAction::Append)]
    pub(crate) runs: Vec<String>,

    /// A mirror of the run image (repeatable; needs exactly one --run)
    #[arg(long = "mirror", value_name = "IMAGE", action = clap::ArgAction::Append, requires = "runs")]
    pub(crate) mirrors: Vec<String>,

    /// Check this platform OS/ARCH[/VARIANT] only (repeatable); default: every platform
    #[arg(short, long = "target", value_name = "TARGET", action = clap::ArgAction::Append)]
    pub(crate) targets: Vec<String>,

    /// Check the image configs only, without reading the layers
    #[arg(long)]
    pub(crate) config_only: bool,

    /// Fail on SHOULD findings (warnings) too
    #[arg(long)]
    pub(crate) strict: bool,

    /// Check the rules of this Platform API (MAJOR.MINOR; default: the newest cnbx knows)
    #[arg(long, value_name = "X.Y")]
    pub(crate) platform_api: Option<String>,

    /// Output format
    #[arg(short, long, value_enum, default_value_t = ReportFormat::Human)]
    pub(crate) output: ReportFormat,

    /// When to look for the images in their registries
    #[arg(long, value_enum, default_value_t = PullPolicy::IfNotPresent, value_name = "POLICY")]
    pub(crate) pull_policy: PullPolicy,

    /// Talk plain HTTP to this registry (repeatable; HOST[:PORT]); loopback registries always are
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]", action = clap::ArgAction::Append)]
    pub(crate) insecure_registries: Vec<String>,
}

/// `cnbx store` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum StoreCommand {
    /// Check every blob, image and cache entry of the local store
    ///
    /// Hashes every blob in CNBX_HOME/store against its digest, resolves every stored image
    /// (manifests, indexes, configs, layers), checks that every layer cache entry points at an
    /// intact blob, and lists temporary files left by interrupted commands. Prints what is
    /// wrong and exits 1 if anything is; with --repair, removes it instead (corrupt blobs,
    /// images that cannot be used any more, cache entries that point at nothing, temporary
    /// files) and exits 0. A corrupt blob is never used by cnbx in any case: it is evicted and
    /// built or downloaded again when it is needed.
    Verify(StoreVerifyArgs),

    /// Remove what no image in the local store uses, and reclaim the space
    ///
    /// Removes the blobs that no image in CNBX_HOME/store references (including layers cached
    /// for builders written to oci: layouts, archives or registries: the next create builds
    /// them again), the layer cache entries that then point at nothing, unusable parts of
    /// downloads, and temporary files left by interrupted commands, then prints what it freed.
    /// With --all it also empties the download cache and every other cache. Safe to run while
    /// other cnbx commands run: it waits for them to finish, and they wait for it.
    Prune(StorePruneArgs),
}

#[derive(Debug, Args)]
pub(crate) struct StoreVerifyArgs {
    /// Remove what is wrong instead of only reporting it
    #[arg(long)]
    pub(crate) repair: bool,
}

#[derive(Debug, Args)]
pub(crate) struct StorePruneArgs {
    /// Also remove every cache entry and download (built or downloaded again when needed)
    #[arg(long)]
    pub(crate) all: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BuilderCommand {
    /// Create a builder image from a builder.toml
    ///
    /// IMAGE is where the builder goes: a name such as `registry.example.com/team/builder:1`
    /// (the local store, or the registry with --publish), `oci:<DIR>[:<TAG>]` (an OCI image
    /// layout directory) or `docker-archive:<FILE>[:<NAME>]` (a tar for `docker load`).
    Create(CreateArgs),

    /// Show information about a builder image
    ///
    /// Reads the builder from the local store (and `oci:` layouts) for the LOCAL section and
    /// from its registry for the REMOTE section, and prints them as pack does.
    Inspect(InspectArgs),

    /// Print the run image a platform should use for an app image
    ///
    /// Candidates are, in order: your configured mirrors for the builder's run image (see
    /// `cnbx config run-image-mirrors`), the run image, then the builder's mirrors. The first
    /// candidate on the app image's registry wins; with no match, the run image itself.
    RunImage(RunImageArgs),
}

/// How to fetch images that may already be in the local store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PullPolicy {
    /// Always fetch from the registry
    Always,
    /// Use the local store if the image is there, else fetch from the registry
    IfNotPresent,
    /// Only use the local store (and OCI layouts)
    Never,
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// Where to write the builder (NAME, oci:<DIR>[:<TAG>] or docker-archive:<FILE>[:<NAME>])
    #[arg(value_name = "IMAGE")]
    pub(crate) image: String,

    /// Path to the builder configuration file (`-` reads standard input)
    #[arg(short, long, value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,

    /// Push the builder to the registry named by IMAGE (base images are read from registries)
    #[arg(long)]
    pub(crate) publish: bool,

    /// When to fetch base images and buildpackages from registries
    #[arg(long, value_enum, default_value_t = PullPolicy::IfNotPresent, value_name = "POLICY")]
    pub(crate) pull_policy: PullPolicy,

    /// Add a label to the builder image (repeatable; KEY=VALUE)
    #[arg(short, long = "label", value_name = "KEY=VALUE", action = clap::ArgAction::Append)]
    pub(crate) labels: Vec<String>,

    /// Target platform OS/ARCH[/VARIANT][:DISTRO@VERSION[;...]] (repeatable); overrides [[targets]]
    #[arg(short, long = "target", value_name = "TARGET", action = clap::ArgAction::Append)]
    pub(crate) targets: Vec<String>,

    /// Put these buildpacks into one layer (repeatable; each a comma list of ID@VERSION)
    #[arg(long = "flatten", value_name = "ID@VERSION,...", action = clap::ArgAction::Append)]
    pub(crate) flatten: Vec<String>,

    /// With --publish and several targets, also push each platform's image as <name>:<tag>-<os>-<arch>[-<variant>]
    #[arg(long)]
    pub(crate) append_image_name_suffix: bool,

    /// Also save (or push) the builder under this name (repeatable; registry names only)
    #[arg(long = "tag", value_name = "NAME", action = clap::ArgAction::Append)]
    pub(crate) tags: Vec<String>,

    /// Talk plain HTTP to this registry (repeatable; HOST[:PORT]); loopback registries always are
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]", action = clap::ArgAction::Append)]
    pub(crate) insecure_registries: Vec<String>,

    /// Check the base images from their configs only, without reading their layers
    ///
    /// By default the build and run images' layers are read (streamed from the registry with
    /// --publish, once per image digest) to check the build user's /etc/passwd entry and home
    /// directory, the run user and the distro labels. With this flag those rules are not
    /// checked, and a warning lists them.
    #[arg(long)]
    pub(crate) skip_layer_checks: bool,

    /// Do everything but write: print what creating the builder would do
    ///
    /// Resolves, fetches what is needed to decide (manifests, configs, buildpackages,
    /// downloads; nothing is stored or pushed, no layer is built) and validates, then prints
    /// the plan: per target the layers in order, what each holds, whether it comes from the
    /// build image, the layer cache, a buildpackage or would be built, and what writing it
    /// would take (already there, mounted, uploaded, written); the validation findings; and
    /// "nothing to do" when the destination already holds exactly this builder. Exits as the
    /// create would.
    #[arg(long)]
    pub(crate) dry_run: bool,

    /// Output format of --dry-run
    #[arg(short, long, value_enum, value_name = "FORMAT", requires = "dry_run")]
    pub(crate) output: Option<ReportFormat>,
}

/// Output formats of `builder inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum InspectFormat {
    /// pack's human-readable layout
    HumanReadable,
    /// JSON
    Json,
    /// YAML
    Yaml,
    /// TOML
    Toml,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The builder (NAME or oci:<DIR>[:<TAG>])
    #[arg(value_name = "IMAGE")]
    pub(crate) image: String,

    /// Output format
    #[arg(short, long, value_enum, default_value_t = InspectFormat::HumanReadable)]
    pub(crate) output: InspectFormat,

    /// Maximum depth of the detection-order tree (-1: unlimited)
    #[arg(short, long, default_value_t = -1, allow_negative_numbers = true)]
    pub(crate) depth: i32,

    /// Talk plain HTTP to this registry (repeatable; HOST[:PORT])
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]", action = clap::ArgAction::Append)]
    pub(crate) insecure_registries: Vec<String>,
}

/// Output formats of `builder run-image`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RunImageFormat {
    /// The chosen run image name only
    Text,
    /// The decision with every candidate and why it won or lost
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct RunImageArgs {
    /// The builder (NAME or oci:<DIR>[:<TAG>])
    #[arg(value_name = "BUILDER")]
    pub(crate) builder: String,

    /// The app image that will be built
    #[arg(long, value_name = "APP")]
    pub(crate) app_image: String,

    /// Output format
    #[arg(short, long, value_enum, default_value_t = RunImageFormat::Text)]
    pub(crate) output: RunImageFormat,

    /// Skip candidates the registry does not let us read (makes network requests)
    #[arg(long)]
    pub(crate) check_access: bool,

    /// Talk plain HTTP to this registry (repeatable; HOST[:PORT])
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]", action = clap::ArgAction::Append)]
    pub(crate) insecure_registries: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Configure mirrors for run images
    ///
    /// Your mirrors take priority over a builder's own mirrors when a run image is chosen for
    /// an app image (`cnbx builder run-image`, and `builder inspect` lists them first). They
    /// are stored in CNBX_HOME/config.toml in pack's `[[run-images]]` format.
    RunImageMirrors(RunImageMirrorsArgs),
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct RunImageMirrorsArgs {
    #[command(subcommand)]
    pub(crate) action: Option<MirrorsAction>,

    /// Without a subcommand: list the mirrors (of this run image only, if given)
    #[arg(value_name = "RUN_IMAGE")]
    pub(crate) run_image: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum MirrorsAction {
    /// Add mirrors for a run image
    Add {
        /// The run image, as written in builders (exact string match)
        #[arg(value_name = "RUN_IMAGE")]
        run_image: String,
        /// A mirror (repeatable, or comma-separated)
        #[arg(short, long = "mirror", value_name = "MIRROR", value_delimiter = ',', action = clap::ArgAction::Append)]
        mirrors: Vec<String>,
    },
    /// Remove mirrors (all of them without --mirror) for a run image
    Remove {
        /// The run image, as written in builders (exact string match)
        #[arg(value_name = "RUN_IMAGE")]
        run_image: String,
        /// A mirror to remove (repeatable, or comma-separated)
        #[arg(short, long = "mirror", value_name = "MIRROR", value_delimiter = ',', action = clap::ArgAction::Append)]
        mirrors: Vec<String>,
    },
    /// List configured mirrors (of one run image, if given)
    List {
        /// Only this run image
        #[arg(value_name = "RUN_IMAGE")]
        run_image: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
