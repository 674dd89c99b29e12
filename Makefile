# cnbx developer entry points. `make demo` and `make test` are the README's two commands; each
# checks its own prerequisites first (scripts/require-rust.sh, scripts/require-tools.sh).
#
# Honoured overrides: CARGO (the cargo command), CARGO_TARGET_DIR (where builds go, as for
# cargo itself), DEMO_HOME, DEMO_IMAGE, and CNBX_NO_INSTALL=1 (never apt-get install missing
# tools; print the command instead).

CARGO ?= cargo
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
CNBX_RELEASE := $(TARGET_DIR)/release/cnbx
DEMO_HOME ?= $(CURDIR)/.cnbx-demo
DEMO_IMAGE ?= cnbx.test/demo-builder:latest

# The oldest Rust toolchain that builds the workspace, tests included: the workspace's
# rust-version in Cargo.toml (the code uses let chains, stable since 1.88, and proptest 1.12
# declares rust-version 1.88), read from there so that the two never disagree.
RUST_MIN := $(shell sed -n 's/^rust-version *= *"\([0-9][0-9.]*\)".*/\1/p' Cargo.toml)

# System tools the tests run, as TOOL:DEBIAN-PACKAGE: the registry and the oracles (see
# crates/cnbx-testkit), htpasswd for basic-auth registries, openssl for the token-auth test's
# certificates, the CA certificates the registry client loads, GNU time for the peak-memory
# bounds of the registry fault tests, ip to find the address that stands for another host, the
# container engines the engine tests start (Debian's dockerd, which brings containerd, runc and
# the docker CLI, and Podman; see crates/cnbx-testkit/src/engines.rs), and a static busybox, the
# shell of the build image whose builder a test runs as a container.
TEST_TOOLS := docker-registry:docker-registry skopeo:skopeo umoci:umoci htpasswd:apache2-utils \
	openssl:openssl /usr/sbin/update-ca-certificates:ca-certificates /usr/bin/time:time ip:iproute2 \
	/usr/sbin/dockerd:docker.io docker:docker.io podman:podman /bin/busybox:busybox-static

.PHONY: all rust build release demo test install lint fmt bench fuzz clean

all: build

rust:
	@bash scripts/require-rust.sh --for "make $(or $(MAKECMDGOALS),all)" \
		$(or $(RUST_MIN),$(error cannot read the workspace rust-version from Cargo.toml))

build: rust
	$(CARGO) build --workspace --all-targets

release: rust
	$(CARGO) build --release -p cnbx

# Builds cnbx, creates a builder from builder.toml.example with the bundled offline test images
# and inspects it (scripts/demo.sh; a CLI test snapshots what it prints).
demo: release
	@bash scripts/demo.sh "$(CNBX_RELEASE)" "$(DEMO_HOME)" "$(DEMO_IMAGE)"

# The whole test suite, after installing the system tools it needs (as root or with
# password-less sudo; otherwise it stops and prints the command to run).
test: rust
	@bash scripts/require-tools.sh --for "make test" $(TEST_TOOLS)
	$(CARGO) test --workspace --all-targets
	$(CARGO) test --workspace --doc

# The property tests named fuzz_* (arbitrary and mutated bytes into every parser of untrusted
# input; tar layers with odd headers read by cnbx and unpacked by umoci, which must agree), run
# long: FUZZ_CASES cases each (the layers that go through builder create: FUZZ_CASES / 100),
# optimised. `make test` runs them with a few hundred cases.
FUZZ_CASES ?= 20000
fuzz: rust
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) test --workspace --release --all-targets fuzz_

# The cnbx binary into cargo's bin directory (~/.cargo/bin), its man pages and its bash, zsh and
# fish completions under PREFIX (default ~/.local; `make install PREFIX=/usr/local` as root).
PREFIX ?= $(HOME)/.local
install: release
	$(CARGO) install --path crates/cnbx --locked --target-dir "$(TARGET_DIR)"
	$(CNBX_RELEASE) manpage --dir "$(PREFIX)/share/man/man1"
	mkdir -p "$(PREFIX)/share/bash-completion/completions" "$(PREFIX)/share/zsh/site-functions" \
		"$(PREFIX)/share/fish/vendor_completions.d"
	$(CNBX_RELEASE) completion bash > "$(PREFIX)/share/bash-completion/completions/cnbx"
	$(CNBX_RELEASE) completion zsh > "$(PREFIX)/share/zsh/site-functions/_cnbx"
	$(CNBX_RELEASE) completion fish > "$(PREFIX)/share/fish/vendor_completions.d/cnbx.fish"

# Formatting, clippy, and no unused dependency: cargo-machete (installed on first use) finds a
# dependency no source of its package names; a normal dependency that only tests use is a
# clippy error, from the `unused_crate_dependencies` lint every crate root turns on for its
# build without tests (crates/xtask/tests/unused_dependencies.rs).
lint: rust
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@command -v cargo-machete >/dev/null 2>&1 || $(CARGO) install cargo-machete --locked
	cargo machete

fmt:
	$(CARGO) fmt --all

# bench/run.sh checks (and installs) its own tools, then builds the release binary.
bench: rust
	CARGO="$(CARGO)" bash bench/run.sh

clean:
	$(CARGO) clean
	rm -rf "$(DEMO_HOME)"
