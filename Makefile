# cnbx developer entry points. `make demo` and `make test` are the README's two commands.

CARGO ?= cargo
DEMO_HOME ?= $(CURDIR)/.cnbx-demo
DEMO_IMAGE ?= cnbx.test/demo-builder:latest
CNBX_RELEASE := target/release/cnbx

.PHONY: all build release demo test lint fmt bench fuzz clean

all: build

build:
	$(CARGO) build --workspace --all-targets

release:
	$(CARGO) build --release -p cnbx

# The main job: create a builder from builder.toml.example with the bundled offline test images,
# then inspect it. CNBX_HOME is a private copy of testdata/cnbx-home, whose local store already
# holds the build and run images (as `docker pull` would for pack), so nothing is downloaded.
demo: release
	rm -rf "$(DEMO_HOME)" && cp -R testdata/cnbx-home "$(DEMO_HOME)"
	CNBX_HOME="$(DEMO_HOME)" $(CNBX_RELEASE) builder create $(DEMO_IMAGE) --config builder.toml.example --pull-policy never
	CNBX_HOME="$(DEMO_HOME)" $(CNBX_RELEASE) builder inspect $(DEMO_IMAGE)

# The whole test suite. Needs docker-registry, skopeo, umoci and htpasswd (see .ci/run).
test:
	$(CARGO) test --workspace --all-targets
	$(CARGO) test --workspace --doc

# The property tests named fuzz_* (arbitrary and mutated bytes into every parser of untrusted
# input), run long: FUZZ_CASES cases each, optimised. `make test` runs them with 256 cases.
FUZZ_CASES ?= 20000
fuzz:
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) test --workspace --release --all-targets fuzz_

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

bench: release
	./bench/run.sh

clean:
	$(CARGO) clean
	rm -rf "$(DEMO_HOME)"
