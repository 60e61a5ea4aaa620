#!/usr/bin/env bash
# ci-omnios.sh: what .github/workflows/ci.yml runs inside the OmniOS VM of
# vmactions/omnios-vm, kept here so that shellcheck sees it.  Runs from the
# checkout (with target/kmod/ptm from the build job), as root or as a user
# that ptm-admin.sh can elevate with pfexec or sudo.
#
#   ci-omnios.sh prepare   baseline acceptance run against the in-tree C ptm,
#                          mark /var/adm/messages, install the Rust module
#                          as /kernel/drv/amd64/ptm.  The workflow sets
#                          cache-after-prepare, so the action then shuts the
#                          VM down and boots it again: the reboot that
#                          switches ptm, as on any administered system.
#   ci-omnios.sh run       check that the Rust module is the loaded ptm, run
#                          the acceptance test, rem_drv/add_drv ptm, run a
#                          short acceptance pass on the reloaded module, and
#                          check /var/adm/messages for panics and new WARNINGs.
set -uo pipefail

state=/var/tmp/ptm-ci
accept() { python3 tests/acceptance/pty_acceptance.py --timeout-scale 2 "$@"; }
admin() { bash packaging/ptm-admin.sh "$@"; }
step() { printf '\n=== ci-omnios: %s\n' "$*"; }

case ${1:-} in
prepare)
	mkdir -p "$state"
	uname -a
	head -n 1 /etc/release
	step "baseline: the acceptance test against the in-tree C ptm"
	if accept --label "in-tree C ptm"; then
		echo pass >"$state/baseline"
	else
		echo fail >"$state/baseline"
	fi
	step "install the Rust ptm (used from the next boot on)"
	admin messages-mark || exit 1
	admin install --kmod target/kmod/ptm --conf ptm.conf || exit 1
	;;
run)
	status=0
	step "which ptm is loaded"
	admin verify --expect rust
	rc=$?
	if [ "$rc" = 1 ]; then
		# The in-tree module is still loaded: the action did not reboot the
		# VM after prepare (cache-after-prepare ignored, or a cache hit
		# without prepare).  Switch without a reboot, which works when no
		# pty is open (the action's ssh sessions have no tty).
		echo "ci-omnios: no reboot happened after prepare; switching with --live"
		admin install --kmod target/kmod/ptm --conf ptm.conf --live || exit 1
		admin verify --expect rust || exit 1
	elif [ "$rc" != 0 ]; then
		exit "$rc"
	fi
	step "the acceptance test against the Rust ptm"
	accept --label "Rust ptm" || status=1
	step "rem_drv ptm (detach, _fini) and add_drv ptm"
	if admin remove-driver --readd; then
		accept --label "Rust ptm after rem_drv/add_drv" \
			--only '^(open-clone-device|grantpt-unlockpt-ptsname|data-raw|subsidiary-close-eof)$' ||
			status=1
	else
		status=1
	fi
	step "kernel messages since the install"
	admin messages-check || status=1
	if [ "$(cat "$state/baseline" 2>/dev/null)" != pass ]; then
		echo "ci-omnios: the baseline run against the in-tree ptm failed (see the prepare step): the test's expectations are wrong for this release"
		status=1
	fi
	exit "$status"
	;;
*)
	echo "usage: $0 prepare|run" >&2
	exit 2
	;;
esac
