//! Command-line definitions (clap derive). Doc comments are the help text: the first line is
//! the short help, the rest the long help.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

/// Create and inspect Cloud Native Buildpacks builder images.
///
/// cnbx is a fast, daemonless, pack-compatible subset of the `pack` CLI: it reads the same
/// builder.toml and writes the same builder image, to the container engine (Docker or Podman)
/// as pack does, a local store when no engine runs, an OCI layout, a docker-archive tar or a
/// registry.
///
/// The configuration is pack's: $PACK_HOME/config.toml (default ~/.pack/config.toml), see
/// `cnbx config`. For pack's scripts, pack's older spellings are accepted too:
/// `cnbx create-builder`, `cnbx inspect-builder` (and `cnbx builder inspect-builder`) and
/// `cnbx set-run-image-mirrors`.
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

    /// Colour messages even when stderr is not a terminal (pack's flag; wins over --no-color)
    #[arg(long, global = true, help_heading = "Global options")]
    pub(crate) force_color: bool,

    /// Start every message on stderr with the time, as pack does (2006/01/02 15:04:05.000000)
    #[arg(long, global = true, help_heading = "Global options")]
    pub(crate) timestamps: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create and inspect builder images
    #[command(subcommand, visible_alias = "builders")]
    Builder(BuilderCommand),

    /// Check base images against the Cloud Native Buildpacks platform spec
    #[command(subcommand)]
    BaseImage(BaseImageCommand),

    /// Manage the configuration, which is pack's ($PACK_HOME/config.toml)
    ///
    /// cnbx reads and edits pack's configuration file, $PACK_HOME/config.toml (default
    /// ~/.pack/config.toml), so that settings made with `pack config` apply to cnbx and the
    /// other way round. Edits change only the key concerned: the rest of the file (keys cnbx
    /// does not use, comments, order) stays as it is.
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

    /// pack's older spelling of `builder create`, kept for pack's scripts
    #[command(name = "create-builder", hide = true)]
    CreateBuilder(CreateArgs),

    /// pack's older spelling of `builder inspect`, kept for pack's scripts
    #[command(name = "inspect-builder", hide = true)]
    InspectBuilder(InspectArgs),

    /// pack's older spelling of `config run-image-mirrors`, kept for pack's scripts: sets
    /// (replaces) the mirrors of a run image
    #[command(name = "set-run-image-mirrors", hide = true)]
    SetRunImageMirrors(SetRunImageMirrorsArgs),
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

    /// Check this platform OS/ARCH[/VARIANT] only (repeatable, or a comma list); default: every platform
    #[arg(short, long = "target", value_name = "TARGET", value_delimiter = ',', action = clap::ArgAction::Append)]
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

    /// When to look for the images in their registries [default: the configuration's
    /// pull-policy, else always]
    #[arg(long, value_enum, value_name = "POLICY")]
    pub(crate) pull_policy: Option<PullPolicy>,

    /// Talk plain HTTP to this registry (repeatable; HOST[:PORT]); loopback registries always are
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]", action = clap::ArgAction::Append)]
    pub(crate) insecure_registries: Vec<String>,

    #[command(flatten)]
    pub(crate) local: LocalArgs,
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
    /// (the container engine when one answers, as with pack, else the local store; the
    /// registry with --publish; see --local), `docker-daemon:NAME[:TAG]` (the engine),
    /// `oci:<DIR>[:<TAG>]` (an OCI image layout directory) or `docker-archive:<FILE>[:<NAME>]`
    /// (a tar for `docker load`).
    Create(CreateArgs),

    /// Show information about a builder image
    ///
    /// Reads the builder from the container engine or the local store (see --local; and
    /// `oci:`, `docker-archive:`, `docker-daemon:` images) for the LOCAL section and
    /// from its registry for the REMOTE section, and prints them as pack does. Without IMAGE,
    /// inspects the default builder (`cnbx config default-builder`). `inspect-builder` is
    /// pack's older spelling, kept for pack's scripts.
    #[command(visible_alias = "inspect-builder")]
    Inspect(InspectArgs),

    /// Print the run image a platform should use for an app image
    ///
    /// Candidates are, in order: your configured mirrors for the builder's run image (see
    /// `cnbx config run-image-mirrors`), the run image, then the builder's mirrors. The first
    /// candidate on the app image's registry wins; with no match, the run image itself.
    RunImage(RunImageArgs),

    /// Show what changed between two builders
    ///
    /// Compares OLD and NEW (registry names, local-store names or oci:<DIR>[:<TAG>]; an image
    /// index is compared platform by platform) from their labels and configs, without
    /// downloading a layer: buildpacks and extensions added, removed, bumped or rebuilt, the
    /// detection orders group by group, system buildpacks, the lifecycle, the build image, run
    /// images and mirrors, the stack, [[build.env]], other labels, and the layers (reused, new,
    /// removed) with what a pull of NEW costs someone who has OLD.
    ///
    /// --output markdown is ready to paste into release notes; --output json is documented in
    /// docs/json-output.md. Exits 0 when the builders are the same, 1 when they differ, 2 on
    /// an error (as diff does).
    Diff(DiffArgs),
}

/// Output formats of `builder diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DiffFormat {
    /// Lines for people
    Human,
    /// A JSON document (docs/json-output.md)
    Json,
    /// Markdown for release notes
    Markdown,
}

#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// The old builder (NAME or oci:<DIR>[:<TAG>])
    #[arg(value_name = "OLD")]
    pub(crate) old: String,

    /// The new builder (NAME or oci:<DIR>[:<TAG>])
    #[arg(value_name = "NEW")]
    pub(crate) new: String,

    /// Output format
    #[arg(short, long, value_enum, default_value_t = DiffFormat::Human)]
    pub(crate) output: DiffFormat,

    /// When to look for the builders in their registries
    #[arg(long, value_enum, default_value_t = PullPolicy::IfNotPresent, value_name = "POLICY")]
    pub(crate) pull_policy: PullPolicy,

    /// Talk plain HTTP to this registry (repeatable; HOST[:PORT]); loopback registries always are
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]", action = clap::ArgAction::Append)]
    pub(crate) insecure_registries: Vec<String>,

    #[command(flatten)]
    pub(crate) local: LocalArgs,
}

/// Where bare image names live without --publish (`--local`, `CNBX_LOCAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Local {
    /// The container engine when one answers (DOCKER_HOST, the Docker context, else
    /// /var/run/docker.sock), else the cnbx store
    Auto,
    /// The container engine; an error when none answers
    Engine,
    /// The cnbx store (CNBX_HOME/store), never the engine
    Store,
}

/// `--local`, shared by the commands that read or write bare names.
#[derive(Debug, Clone, Args)]
pub(crate) struct LocalArgs {
    /// Where bare image names are without --publish: the container engine (Docker or
    /// Podman) when one answers, as with pack, else the cnbx store; `engine` or `store`
    /// forces one
    #[arg(long, value_enum, value_name = "WHERE", env = "CNBX_LOCAL", default_value_t = Local::Auto)]
    pub(crate) local: Local,
}

/// How to fetch images that may already be in the local store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PullPolicy {
    /// Ask the registry for the current image; fetch only what the local store lacks
    Always,
    /// Use the local store if the image is there, else fetch from the registry
    IfNotPresent,
    /// Only use the local store (and OCI layouts)
    Never,
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// Where to write the builder (NAME, docker-daemon:NAME[:TAG], oci:<DIR>[:<TAG>] or docker-archive:<FILE>[:<NAME>])
    #[arg(value_name = "IMAGE")]
    pub(crate) image: String,

    /// Path to the builder configuration file (`-` reads standard input)
    #[arg(short, long, value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,

    /// Push the builder to the registry named by IMAGE (base images are read from registries)
    #[arg(long)]
    pub(crate) publish: bool,

    /// When to fetch base images and buildpackages from registries [default: the
    /// configuration's pull-policy, else always, as in pack]
    #[arg(long, value_enum, value_name = "POLICY")]
    pub(crate) pull_policy: Option<PullPolicy>,

    /// Add a label to the builder image (repeatable; KEY=VALUE)
    #[arg(short, long = "label", value_name = "KEY=VALUE", action = clap::ArgAction::Append)]
    pub(crate) labels: Vec<String>,

    /// Target platform OS/ARCH[/VARIANT][:DISTRO@VERSION[;...]] (repeatable, or a comma list as in pack); overrides [[targets]]
    #[arg(short, long = "target", value_name = "TARGET", value_delimiter = ',', action = clap::ArgAction::Append)]
    pub(crate) targets: Vec<String>,

    /// Put these buildpacks into one layer (repeatable; each a comma list of ID@VERSION)
    #[arg(long = "flatten", value_name = "ID@VERSION,...", action = clap::ArgAction::Append)]
    pub(crate) flatten: Vec<String>,

    /// With --publish and several targets, also push each platform's image as <name>:<tag>-<os>-<arch>[-<variant>]
    #[arg(long)]
    pub(crate) append_image_name_suffix: bool,

    /// Also save (or push) the builder under this name (repeatable, or a comma list as in pack; registry names only)
    #[arg(long = "tag", value_name = "NAME", value_delimiter = ',', action = clap::ArgAction::Append)]
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

    /// Record run images and mirrors whose registry cannot be reached from here, unchecked
    ///
    /// For builders used on another network: a run image or mirror whose registry does not
    /// resolve, refuses the connection or does not answer in time is written into the builder
    /// as given, for the build image's platform, with one warning naming it and the run-image
    /// rules that were not checked. A registry that answers is still checked in full: an image
    /// it does not have is pack's "not accessible" warning, and one it refuses (401/403), an
    /// invalid one or one for another platform still fail the create.
    #[arg(long)]
    pub(crate) allow_unreachable_run_images: bool,

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

    #[command(flatten)]
    pub(crate) local: LocalArgs,
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
    /// The builder (NAME or oci:<DIR>[:<TAG>]); default: the default builder
    #[arg(value_name = "IMAGE")]
    pub(crate) image: Option<String>,

    /// Output format
    #[arg(short, long, value_enum, default_value_t = InspectFormat::HumanReadable)]
    pub(crate) output: InspectFormat,

    /// Maximum depth of the detection-order tree (-1: unlimited)
    #[arg(short, long, default_value_t = -1, allow_negative_numbers = true)]
    pub(crate) depth: i32,

    /// Talk plain HTTP to this registry (repeatable; HOST[:PORT])
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]", action = clap::ArgAction::Append)]
    pub(crate) insecure_registries: Vec<String>,

    #[command(flatten)]
    pub(crate) local: LocalArgs,
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

    #[command(flatten)]
    pub(crate) local: LocalArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// List, add and remove run image mirrors
    ///
    /// Your mirrors take priority over a builder's own mirrors when a run image is chosen for
    /// an app image (`pack build`, `cnbx builder run-image`; `builder inspect` lists them
    /// first). They are the `[[run-images]]` of pack's configuration.
    RunImageMirrors(RunImageMirrorsArgs),

    /// List, add and remove registry mirrors
    ///
    /// Every image cnbx (and pack) fetches from REGISTRY is fetched from its mirror instead:
    /// `<mirror>/<repository>:<tag>`. REGISTRY is a registry host as image names are
    /// normalised (`index.docker.io` for names without a registry), or `*` for every registry.
    /// The names written into builders stay the original ones.
    #[command(visible_alias = "registry-mirror")]
    RegistryMirrors(RegistryMirrorsArgs),

    /// List, set and unset the pull policy other commands use by default
    ///
    /// The pull policy of `builder create` and `base-image check` when --pull-policy is not
    /// given. Without POLICY, prints it; unset, it is always (pack's default).
    PullPolicy(PullPolicyArgs),

    /// List, add and remove trusted builders
    ///
    /// pack runs every lifecycle phase of a build with a trusted builder in one container;
    /// `builder inspect` reports whether a builder is trusted. pack's known builders are
    /// always trusted; an entry without a tag trusts every tag of its repository.
    #[command(visible_aliases = ["trusted-builder", "trust-builder", "trust-builders"])]
    TrustedBuilders(TrustedBuildersArgs),

    /// List, set and unset the default builder
    ///
    /// The builder `builder inspect` inspects when no image is given (and `pack build` uses
    /// without --builder). Setting it checks that the builder exists, locally or on its
    /// registry.
    DefaultBuilder(DefaultBuilderArgs),
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct RegistryMirrorsArgs {
    #[command(subcommand)]
    pub(crate) action: Option<RegistryMirrorsAction>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RegistryMirrorsAction {
    /// Set the mirror of a registry
    #[command(args_override_self = true)]
    Add {
        /// The registry (index.docker.io, gcr.io, localhost:5000, ...), or '*' for every registry
        #[arg(value_name = "REGISTRY")]
        registry: String,
        /// The mirror: HOST[:PORT][/PATH]
        #[arg(short, long, value_name = "MIRROR")]
        mirror: Option<String>,
    },
    /// Remove the mirror of a registry
    Remove {
        /// The registry, as configured
        #[arg(value_name = "REGISTRY")]
        registry: String,
    },
    /// List the registry mirrors
    List,
}

#[derive(Debug, Args)]
pub(crate) struct PullPolicyArgs {
    /// The new pull policy: always, if-not-present or never
    #[arg(value_name = "POLICY")]
    pub(crate) policy: Option<String>,

    /// Unset the pull policy (back to pack's default, always)
    #[arg(short, long)]
    pub(crate) unset: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct TrustedBuildersArgs {
    #[command(subcommand)]
    pub(crate) action: Option<TrustedBuildersAction>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TrustedBuildersAction {
    /// Trust a builder (NAME: every tag of the repository; NAME:TAG or NAME@DIGEST: that one)
    Add {
        /// The builder
        #[arg(value_name = "BUILDER")]
        builder: String,
    },
    /// Stop trusting a builder (an entry added with `add`, as written)
    Remove {
        /// The builder
        #[arg(value_name = "BUILDER")]
        builder: String,
    },
    /// List the trusted builders: pack's known builders and yours
    List,
}

#[derive(Debug, Args)]
pub(crate) struct DefaultBuilderArgs {
    /// The new default builder (a registry name)
    #[arg(value_name = "BUILDER")]
    pub(crate) builder: Option<String>,

    /// Unset the default builder
    #[arg(short, long)]
    pub(crate) unset: bool,

    /// Talk plain HTTP to this registry when checking the builder (repeatable; HOST[:PORT])
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]", action = clap::ArgAction::Append)]
    pub(crate) insecure_registries: Vec<String>,
}

/// Arguments of `cnbx set-run-image-mirrors` (pack's older command).
#[derive(Debug, Args)]
pub(crate) struct SetRunImageMirrorsArgs {
    /// The run image, as written in builders (exact string match)
    #[arg(value_name = "RUN_IMAGE")]
    pub(crate) run_image: String,
    /// A mirror (repeatable, or comma-separated); none removes them all
    #[arg(short, long = "mirror", value_name = "MIRROR", value_delimiter = ',', action = clap::ArgAction::Append)]
    pub(crate) mirrors: Vec<String>,
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
