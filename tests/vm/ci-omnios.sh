#!/usr/bin/env bash
# ci-omnios.sh: what .github/workflows/ci.yml runs inside the OmniOS VM of
# vmactions/omnios-vm, kept here so that shellcheck and tests/vm/selftest.sh
# see it.  Runs from the checkout (with target/kmod/ptm from the build job),
# as root or as a user that ptm-admin.sh can elevate with pfexec or sudo.
#
#   ci-omnios.sh prepare   baseline acceptance run against the in-tree C ptm,
#                          mark /var/adm/messages, install the Rust module
#                          as /kernel/drv/amd64/ptm.  The workflow sets
#                          cache-after-prepare, so the action then shuts the
#                          VM down and boots it again: the reboot that
#                          switches ptm, as on any administered system.
#   ci-omnios.sh run       wait for cloud-init's final stage, check that the
#                          Rust module is the loaded ptm, run the acceptance
#                          test, unload and rem_drv/add_drv ptm, a short
#                          acceptance pass on the reloaded module, roll back
#                          to the in-tree module, check /var/adm/messages for
#                          panics and new WARNINGs.  Everything it prints
#                          and the kernel evidence on failure go to
#                          target/omnios-ci/, with the verdict in
#                          target/omnios-ci/status; the workflow copies that
#                          back and uploads it as the artifact omnios-logs.
#   ci-omnios.sh verdict   (on the runner) print target/omnios-ci/status and
#                          exit with its status; without one, the run in
#                          the VM did not finish: exit 3.
#
# Exit status: that of tests/vm/run-vm-test.sh (0 passed, 1 the acceptance
# test failed, 3 setup, 5 the Rust module does not load, 6 the wrong module
# is loaded, 7 ptm could not be unloaded, 8 the rollback failed, 9 a kernel
# panic, 10 new kernel WARNINGs, 11 the loaded module cannot be told).
set -uo pipefail

EX_TEST=1 EX_SETUP=3 EX_NOLOAD=5 EX_WRONG=6 EX_BUSY=7 EX_ROLLBACK=8 EX_PANIC=9
EX_WARN=10 EX_UNKNOWN=11

# PTM_ADMIN_ROOT: the mock guest's file tree (tests/vm/selftest.sh).
state=${PTM_ADMIN_ROOT:-}/var/tmp/ptm-ci
logdir=${CI_OMNIOS_LOGDIR:-target/omnios-ci}

accept() { python3 tests/acceptance/pty_acceptance.py --timeout-scale 2 "$@"; }
admin() { bash packaging/ptm-admin.sh "$@"; }
step() { printf '\n=== ci-omnios: %s\n' "$*"; }

status=0
first=""
# record STATUS MESSAGE: a failed check (the first one's status is the
# run's; a panic always wins).
record() {
	echo "ci-omnios: FAIL ($1): $2"
	if [ "$status" = 0 ] || { [ "$1" = "$EX_PANIC" ] && [ "$status" != "$EX_PANIC" ]; }; then
		status=$1
		first=$2
	fi
}

# cloud-init's last stage (svc:/system/cloud-init:final in omniosorg/
# cloud-init's SMF manifest) may restart sshd or regenerate host keys; the
# action's later ssh connections (the copy back) should not meet that.
wait_cloud_init() {
	local deadline=$((SECONDS + ${CI_CLOUDINIT_TIMEOUT:-600})) st
	while :; do
		st=$(svcs -H -o state svc:/system/cloud-init:final 2>/dev/null) || st=absent
		case $st in
		online | absent | maintenance | degraded | disabled)
			echo "ci-omnios: svc:/system/cloud-init:final: $st"
			return 0
			;;
		esac
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "ci-omnios: svc:/system/cloud-init:final still $st after ${CI_CLOUDINIT_TIMEOUT:-600}s; going on"
			return 0
		fi
		sleep 5
	done
}

prepare() {
	local rc
	mkdir -p "$state"
	uname -a
	head -n 1 /etc/release
	step "baseline: the acceptance test against the in-tree C ptm"
	accept --label "in-tree C ptm" 2>&1 | tee "$state/baseline.txt"
	if [ "${PIPESTATUS[0]}" = 0 ]; then
		echo pass >"$state/baseline"
	else
		echo fail >"$state/baseline"
	fi
	step "install the Rust ptm (used from the next boot on)"
	admin messages-mark || exit "$EX_SETUP"
	admin install --kmod target/kmod/ptm --conf ptm.conf 2>&1 | tee "$state/install.txt"
	rc=${PIPESTATUS[0]}
	if [ "$rc" != 0 ]; then
		admin evidence
		[ "$rc" = "$EX_ROLLBACK" ] || rc=$EX_SETUP
		echo "ci-omnios: FAIL ($rc): ptm-admin.sh install failed"
		exit "$rc"
	fi
}

# The checks; returns early when the rest would be meaningless.
run_checks() {
	local rc f
	for f in "$state"/*.txt; do
		[ -f "$f" ] && cp "$f" "$logdir/prepare-$(basename "$f")"
	done
	uname -a
	step "cloud-init"
	wait_cloud_init

	step "which ptm is loaded"
	admin verify --expect rust
	rc=$?
	if [ "$rc" = "$EX_WRONG" ]; then
		# The in-tree module is still loaded: the action did not reboot the
		# VM after prepare (cache-after-prepare ignored, or a prepared image
		# restored without a reboot).  Switch without one, which works when
		# no pty is open (the action's ssh sessions have no tty).  Only
		# here: a module that does not load is not retried.
		echo "ci-omnios: the in-tree ptm is loaded: no reboot happened after prepare; switching with --live"
		admin install --kmod target/kmod/ptm --conf ptm.conf --live
		rc=$?
		case $rc in
		0) admin verify --expect rust; rc=$? ;;
		"$EX_BUSY") record "$EX_BUSY" "no reboot happened after prepare, and ptm could not be unloaded for install --live"; return ;;
		esac
	fi
	case $rc in
	0) ;;
	"$EX_NOLOAD") record "$EX_NOLOAD" "the Rust module does not load: /dev/ptmx does not open (kernel evidence below)"; return ;;
	"$EX_WRONG") record "$EX_WRONG" "the loaded ptm is not the Rust module"; return ;;
	"$EX_UNKNOWN") record "$EX_UNKNOWN" "which ptm is loaded cannot be told"; return ;;
	"$EX_ROLLBACK") record "$EX_ROLLBACK" "install --live failed and could not put things back"; return ;;
	*) record "$EX_SETUP" "ptm-admin.sh verify/install failed (exit $rc)"; return ;;
	esac

	step "the acceptance test against the Rust ptm"
	accept --label "Rust ptm" || record "$EX_TEST" "the acceptance test fails against the Rust ptm"

	step "modunload ptm (detach, _fini), rem_drv and add_drv ptm"
	admin reload-driver
	rc=$?
	case $rc in
	0)
		accept --label "Rust ptm after rem_drv/add_drv" \
			--only '^(open-clone-device|grantpt-unlockpt-ptsname|data-raw|subsidiary-close-eof)$' ||
			record "$EX_TEST" "the acceptance test fails against the reloaded Rust ptm"
		;;
	"$EX_NOLOAD") record "$EX_NOLOAD" "the Rust module does not load again after modunload and rem_drv/add_drv (ptm-admin.sh went back to the in-tree module)" ;;
	"$EX_BUSY") record "$EX_BUSY" "ptm could not be unloaded (modunload or rem_drv: in use)" ;;
	"$EX_ROLLBACK") record "$EX_ROLLBACK" "reload-driver failed and ptm could not be put right"; return ;;
	*) record "$rc" "ptm-admin.sh reload-driver failed (exit $rc)" ;;
	esac

	if [ "$rc" != "$EX_NOLOAD" ]; then
		step "roll back to the in-tree ptm"
		admin rollback --live
		rc=$?
		case $rc in
		0) admin verify --expect in-tree || record "$EX_ROLLBACK" "after the rollback the loaded ptm is not the in-tree module" ;;
		"$EX_BUSY") record "$EX_BUSY" "ptm could not be unloaded for the rollback (in use)" ;;
		*) record "$EX_ROLLBACK" "the rollback to the in-tree ptm failed (exit $rc)" ;;
		esac
	fi

	step "kernel messages since the install"
	admin messages-check
	case $? in
	0) ;;
	"$EX_PANIC") record "$EX_PANIC" "a kernel panic in /var/adm/messages" ;;
	"$EX_WARN") record "$EX_WARN" "new kernel WARNINGs in /var/adm/messages (PTM_WARN_ALLOW accepts known ones)" ;;
	*) record "$EX_SETUP" "ptm-admin.sh messages-check failed" ;;
	esac
	if [ "$(cat "$state/baseline" 2>/dev/null)" != pass ]; then
		record "$EX_TEST" "the baseline run against the in-tree ptm failed (see prepare-baseline.txt): the test's expectations are wrong for this release"
	fi
}

run() {
	run_checks
	if [ "$status" != 0 ]; then
		step "kernel evidence (mdb ::msgbuf, /var/adm/messages)"
		admin evidence 2>&1 | tee "$logdir/evidence.txt"
	fi
	printf '%s %s\n' "$status" "${first:-passed}" >"$logdir/status"
	if [ "$status" = 0 ]; then
		echo "ci-omnios: PASS"
	else
		echo "ci-omnios: FAIL ($status): $first"
	fi
	return "$status"
}

verdict() {
	local code msg
	if [ ! -f "$logdir/status" ]; then
		echo "ci-omnios: no verdict ($logdir/status is missing): the run in the VM did not finish, or its logs were not copied back; see the log of the OmniOS step"
		exit "$EX_SETUP"
	fi
	read -r code msg <"$logdir/status"
	if [ "$code" = 0 ]; then
		echo "ci-omnios: PASS"
	else
		echo "ci-omnios: FAIL ($code): $msg (logs: the omnios-logs artifact)"
	fi
	exit "$code"
}

case ${1:-} in
prepare) prepare ;;
run)
	mkdir -p "$logdir"
	run 2>&1 | tee "$logdir/run.log"
	exit "${PIPESTATUS[0]}"
	;;
verdict) verdict ;;
*)
	echo "usage: $0 prepare|run|verdict" >&2
	exit 2
	;;
esac
