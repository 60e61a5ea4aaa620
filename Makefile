# Builds the Rust ptm driver into an illumos amd64 kernel module and gates it.
#
#   make            build target/kmod/ptm and run the krtld-compatibility gate
#   make kmod       build target/kmod/ptm only
#   make gate       run the gate on target/kmod/ptm (build it with `make kmod`)
#   make gate-demo  show the gate passing a minimal module built for our
#                   target spec and rejecting the same module built for
#                   rustc's stock x86_64-unknown-none target
#   make test       all + fmt + clippy + cargo tests + model audit + gate-demo + $(TEST_EXTRA)
#   make install    (illumos only, as root) load the Rust ptm instead of the
#                   in-tree one from the next boot (packaging/ptm-admin.sh)
#   make uninstall  (illumos only, as root) go back to the in-tree ptm
#   make clean      remove cargo's target directory
#
# GNU make is required (`gmake` on illumos).
#
# Why RUSTC_BOOTSTRAP=1: the module needs a custom target spec (kernel code
# model, no red zone, soft-float, PLT-style calls; see
# x86_64-illumos-kernel.json) and a core/compiler_builtins rebuilt for it
# with -Zbuild-std. Both are unstable cargo/rustc features. As the Linux
# kernel does for its Rust code, we keep to a pinned stable toolchain
# (rust-toolchain.toml) and set RUSTC_BOOTSTRAP=1 for this one build to
# unlock them, rather than depend on a moving nightly. Nothing else in the
# repository is built that way.
#
# Every cargo command here runs with --locked: a build never rewrites a
# Cargo.lock, and a stale one is an error.

SHELL := /bin/sh

# Targets run one at a time (cargo parallelises inside each build); `all`
# must not gate the module before it is built.
.NOTPARALLEL:

CARGO ?= cargo

# GNU binutils are required: the link script and --gc-sections are GNU ld's.
# On illumos they are installed as gld, gobjcopy and greadelf; override on
# the command line if yours live elsewhere (make LD=/path/to/gld ...).
ifeq ($(shell uname -s),SunOS)
GNU_PREFIX := g
else
GNU_PREFIX :=
endif
ifeq ($(origin LD),default)
LD := $(GNU_PREFIX)ld
endif
OBJCOPY ?= $(GNU_PREFIX)objcopy
READELF ?= $(GNU_PREFIX)readelf

KMOD_TARGET := x86_64-illumos-kernel
KMOD_SPEC := $(CURDIR)/$(KMOD_TARGET).json
KMOD_PROFILE := kmod
KMOD_LIB := target/$(KMOD_TARGET)/$(KMOD_PROFILE)/libptm.a
KMOD_DIR := target/kmod
KMOD := $(KMOD_DIR)/ptm
ALLOWLIST := kmod/allowlist.txt
C_NAMES := kmod/c-names.txt

# The link step (ld -r with kmod/kmod-merge.ld, then objcopy), written once
# in kmod/link.sh: $(KMOD_LINK) <staticlib> <module>.
KMOD_LINK := LD="$(LD)" OBJCOPY="$(OBJCOPY)" READELF="$(READELF)" kmod/link.sh

# Unstable flags for the kernel build (see RUSTC_BOOTSTRAP above). core and
# compiler_builtins are rebuilt for the target; compiler-builtins-mem is NOT
# enabled, so memcpy/memmove/memset/memcmp stay undefined and bind to the
# kernel's own at load time.
KMOD_CARGO_FLAGS := --profile $(KMOD_PROFILE) --target $(KMOD_SPEC) \
	-Zbuild-std=core,compiler_builtins -Zjson-target-spec

GATE := target/debug/kmod-gate

# Extra targets that `make test` runs after the cargo tests; files in mk/
# append to it (TEST_EXTRA += my-target).
TEST_EXTRA :=

.PHONY: all kmod gate gate-bin gate-demo test install uninstall clean

all: kmod gate

# 1. cargo: the crate as a staticlib for the kernel target.
# 2. kmod/link.sh: ld -r and objcopy into the one ET_REL object krtld loads
#    (the script says what each step is for).
kmod:
	RUSTC_BOOTSTRAP=1 $(CARGO) rustc --locked -p ptm $(KMOD_CARGO_FLAGS) --crate-type staticlib
	@mkdir -p $(KMOD_DIR)
	$(KMOD_LINK) $(KMOD_LIB) $(KMOD)
	@echo "built $(KMOD)"

gate-bin:
	$(CARGO) build --locked -q -p kmod-gate

gate: gate-bin
	@test -f $(KMOD) || { echo "$(KMOD) does not exist: run 'make kmod' first" >&2; exit 1; }
	$(GATE) $(KMOD) --allowlist $(ALLOWLIST) --c-names $(C_NAMES)

# The gate on a minimal driver-shaped module (tools/kmod-gate/fixtures/
# minimod) built twice: for our target spec, where it must pass, and for
# the stock x86_64-unknown-none with the flags that come closest (static
# relocation model, kernel code model, frame pointers), where LLVM still
# calls the memset libcall through the GOT and the gate must say so.
# Both rebuild core from source, so no prebuilt rust-std is needed.
DEMO_DIR := tools/kmod-gate/fixtures/minimod
DEMO_TARGET_DIR := $(CURDIR)/target/gate-demo
DEMO_OUT := $(KMOD_DIR)/demo

gate-demo: gate-bin
	@mkdir -p $(DEMO_OUT)
	cd $(DEMO_DIR) && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$(DEMO_TARGET_DIR) \
		$(CARGO) build --locked -q --release --target $(KMOD_SPEC) \
		-Zbuild-std=core,compiler_builtins -Zjson-target-spec
	$(KMOD_LINK) $(DEMO_TARGET_DIR)/$(KMOD_TARGET)/release/libminimod.a $(DEMO_OUT)/minimod-spec
	$(GATE) $(DEMO_OUT)/minimod-spec --allowlist $(ALLOWLIST)
	cd $(DEMO_DIR) && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$(DEMO_TARGET_DIR) \
		RUSTFLAGS="-C relocation-model=static -C code-model=kernel -C force-frame-pointers=yes" \
		$(CARGO) build --locked -q --release --target x86_64-unknown-none \
		-Zbuild-std=core,compiler_builtins
	$(KMOD_LINK) $(DEMO_TARGET_DIR)/x86_64-unknown-none/release/libminimod.a $(DEMO_OUT)/minimod-stock
	@echo "expecting the gate to reject the stock-target build:"
	@if $(GATE) $(DEMO_OUT)/minimod-stock --allowlist $(ALLOWLIST) > $(DEMO_OUT)/stock.txt; then \
		cat $(DEMO_OUT)/stock.txt; \
		echo "gate-demo: FAILED: the gate accepted the stock x86_64-unknown-none build" >&2; exit 1; \
	fi; \
	cat $(DEMO_OUT)/stock.txt; \
	if grep -q 'GOTPCREL' $(DEMO_OUT)/stock.txt; then \
		echo "gate-demo: OK: stock target rejected for its GOT-relative libcall"; \
	else \
		echo "gate-demo: FAILED: rejected, but not for a GOTPCREL relocation" >&2; exit 1; \
	fi

# The model audit: the scenarios leave the C driver's trace of each world
# here, and model-audit compares them (a difference is a model defect).
AUDIT_DIR := $(CURDIR)/target/audit

test:
	$(MAKE) all
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	rm -rf $(AUDIT_DIR)
	PTM_KMOD=$(CURDIR)/$(KMOD) PTM_AUDIT_DIR=$(AUDIT_DIR) $(CARGO) test --locked --workspace
	$(CARGO) run --locked -q -p ptm-scenario --bin model-audit -- $(AUDIT_DIR)
	$(MAKE) gate-demo
	$(if $(strip $(TEST_EXTRA)),$(MAKE) $(TEST_EXTRA))

# --- illumos installation -------------------------------------------------
#
# packaging/ptm-admin.sh does the work (docs/illumos.md explains it): the
# module goes to /kernel/drv/amd64/ptm, which krtld's module path searches
# before the in-tree /usr/kernel/drv/amd64/ptm, so nothing that pkg:/SUNWcs
# delivers is changed and the driver registration stays as it is. The
# switch takes effect at the next reboot (or at once with
# PTM_ADMIN_FLAGS=--live, when no pseudo-terminal is open). uninstall
# removes the two files again, so the in-tree driver is loaded next time.

PTM_ADMIN := packaging/ptm-admin.sh
PTM_ADMIN_FLAGS ?=

define require_illumos
	@if [ "`uname -s`" != SunOS ]; then \
		echo "make $@: this installs a kernel driver into a running illumos system, and"; \
		echo "this machine runs `uname -s`. Nothing was changed. Copy $(KMOD) and ptm.conf"; \
		echo "to an illumos host (or a checkout there) and run 'gmake $@' as root."; \
		exit 1; \
	fi
endef

install:
	$(require_illumos)
	@test -f $(KMOD) || { echo "make install: $(KMOD) is missing: build it first (make)" >&2; exit 1; }
	$(PTM_ADMIN) install --kmod $(KMOD) --conf ptm.conf $(PTM_ADMIN_FLAGS)

uninstall:
	$(require_illumos)
	$(PTM_ADMIN) rollback $(PTM_ADMIN_FLAGS)

clean:
	$(CARGO) clean

-include mk/*.mk
