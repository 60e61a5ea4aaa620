#!/usr/bin/env bash
# fake.sh: a mock OmniOS guest for tests/vm/selftest.sh, so that the control
# flow of run-vm-test.sh, ci-omnios.sh and ptm-admin.sh runs end to end on
# Linux.  It proves nothing about illumos: it models what those scripts rely
# on, and the output formats it prints (modinfo, mdb ::modctl, ::print,
# ::msgbuf, kstat, svcs, rem_drv's messages) are the ones the scripts
# expect, taken from the illumos sources where the comment says so.  The
# "guest" is this machine.
#
# Multi-call: selftest.sh links it under the names below.  State lives in
# $MOCK_STATE; the guest's files under $MOCK_STATE/root (PTM_ADMIN_ROOT).
#
# Host side:  qemu-system-x86_64, ssh, mockctl (test helper: "works" opens
#             the mock /dev/ptmx, "loaded" prints the loaded module's path)
# Guest side: uname kstat svcs modinfo modunload mdb bootadm eeprom logger
#             rem_drv add_drv update_drv reboot init poweroff python3
#
# The mock kernel: ptm loads at the first open of /dev/ptmx, from the first
# drv/amd64/ptm on the module path (/kernel, then /usr/kernel), if ptm is
# bound (/etc/name_to_major) with its clone minor permissions
# (/etc/minor_perm); a module file containing the word BROKEN fails to load,
# with kernel WARNINGs in the message buffer and /var/adm/messages.
#
# Knobs (environment):
#   MOCK_LOAD_PATH      the file "krtld" loads ptm from, whatever is installed
#   MOCK_BUSY=1         a pty is held open: modunload fails, and rem_drv
#                       cannot unload ptm (it still removes the binding and
#                       exits 0, as cmd/modload/rem_drv.c does)
#   MOCK_FAIL=cmd:N,... the Nth call of cmd fails (bootadm, add_drv,
#                       modunload; rem_drv:N: a pty is opened just before
#                       the Nth rem_drv, which then cannot unload ptm)
#   MOCK_SSH_DROP=N     after each reboot, the N ssh connections that follow
#                       the first successful one exit 255 (sshd restarting
#                       after cloud-init regenerated the host keys)
#   MOCK_SSH_255=PAT:N  the first N ssh connections whose command contains
#                       PAT exit 255
#   MOCK_CLOUDINIT_PROBES=N  after each boot, svc:/system/cloud-init:final
#                       reports "offline" to the first N svcs queries
#   MOCK_NO_CLOUDINIT=1 the image has no cloud-init service at all
#   MOCK_BOOT2_CONSOLE  text the second boot prints on the console
#   MOCK_BOOT2_MESSAGES a line the second boot appends to /var/adm/messages
#   MOCK_ACCEPTANCE_ONLY  --only REGEX for every acceptance run (a quicker
#                       run where the test itself is not the point)
#   MOCK_ACCEPTANCE_FAIL=LABEL  the acceptance run with --label LABEL fails
set -euo pipefail

state=${MOCK_STATE:?}
root=$state/root
name=$(basename "$0")

registered() { grep '^ptm ' "$root/etc/name_to_major" >/dev/null 2>&1; }

# The module krtld would load now: the first drv/amd64/ptm on the path.
module_path() {
	if [ -n "${MOCK_LOAD_PATH:-}" ]; then
		echo "$MOCK_LOAD_PATH"
	elif [ -f "$root/kernel/drv/amd64/ptm" ]; then
		echo /kernel/drv/amd64/ptm
	else
		echo /usr/kernel/drv/amd64/ptm
	fi
}

loaded() { cat "$state/loaded" 2>/dev/null; }

# A kernel message, to the message buffer (::msgbuf) and to syslog.
klog() {
	echo "$*" >>"$state/msgbuf"
	echo "Jan  1 00:00:00 mock genunix: [ID 100000 kern.warning] $*" >>"$root/var/adm/messages"
}

# mock_fail NAME: true when this call of NAME is listed in MOCK_FAIL.
mock_fail() {
	local n
	n=$(($(cat "$state/count.$1" 2>/dev/null || echo 0) + 1))
	echo "$n" >"$state/count.$1"
	case ",${MOCK_FAIL:-}," in *",$1:$n,"*) return 0 ;; esac
	return 1
}

# An open of /dev/ptmx: loads ptm if it is not loaded.
open_ptmx() {
	local path
	if ! registered; then
		echo "OSError: [Errno 6] No such device or address: '/dev/ptmx' (ptm is not bound)" >&2
		return 1
	fi
	if ! grep '^clone:ptmx ' "$root/etc/minor_perm" >/dev/null 2>&1; then
		echo "OSError: [Errno 13] Permission denied: '/dev/ptmx' (no clone:ptmx in /etc/minor_perm)" >&2
		return 1
	fi
	[ -z "$(loaded)" ] || return 0
	path=$(module_path)
	if [ ! -f "$root$path" ] || grep -q BROKEN "$root$path"; then
		klog "WARNING: $path: undefined symbol 'mock_missing_symbol'"
		klog "WARNING: mod_load: cannot load module 'ptm'"
		echo "OSError: [Errno 6] No such device or address: '/dev/ptmx'" >&2
		return 1
	fi
	echo "$path" >"$state/loaded"
}

case $name in
qemu-system-x86_64)
	console=""
	while [ $# -gt 0 ]; do
		case $1 in -serial) console=${2#file:}; shift ;; esac
		shift
	done
	echo "$console" >"$state/console"
	printf 'mock console: boot 1\r\nWARNING: vioif0: a benign warning of this image\r\n' >>"$console"
	echo $$ >"$state/qemu.pid"
	exec sleep 3600
	;;
ssh)
	user=""
	while [ $# -gt 0 ] && [[ $1 != *@127.0.0.1 ]]; do shift; done
	user=${1%@127.0.0.1}
	shift
	[ ! -e "$state/down" ] || { echo "ssh: connect to host 127.0.0.1: Connection refused" >&2; exit 255; }
	cmd="$*"
	# OmniOS's sshd_config has PermitRootLogin no.
	if [ "$user" = root ]; then
		echo "root@127.0.0.1: Permission denied (publickey)." >&2
		exit 255
	fi
	if [ -n "${MOCK_SSH_255:-}" ] && [[ $cmd == *"${MOCK_SSH_255%:*}"* ]]; then
		n=$(($(cat "$state/count.ssh255" 2>/dev/null || echo 0) + 1))
		echo "$n" >"$state/count.ssh255"
		if [ "$n" -le "${MOCK_SSH_255##*:}" ]; then
			echo "Connection closed by 127.0.0.1 port 22" >&2
			exit 255
		fi
	fi
	drop=$(cat "$state/drop" 2>/dev/null || echo 0)
	if [ "$drop" = armed ]; then
		echo "${MOCK_SSH_DROP:-0}" >"$state/drop"
	elif [ "$drop" -gt 0 ]; then
		echo $((drop - 1)) >"$state/drop"
		echo "kex_exchange_identification: read: Connection reset by peer" >&2
		exit 255
	fi
	cmd=${cmd//\/usr\/sbin\//}
	cmd=${cmd//\/var\/adm\//$root/var/adm/}
	cmd=${cmd//\/var\/tmp\//$root/var/tmp/}
	PATH="$state/guest-bin:$PATH" PTM_ADMIN_ROOT=$root exec bash -c "$cmd"
	;;
mockctl)
	case ${1:-} in
	works) open_ptmx && echo "works: ptm loaded from $(loaded)" ;;
	loaded) loaded ;;
	*) exit 2 ;;
	esac
	;;
python3)
	# ptm-admin.sh's probe: python3 -c '<open and close>' /dev/ptmx.
	if [ $# = 3 ] && [ "$1" = -c ] && [ "$3" = /dev/ptmx ]; then
		open_ptmx
		exit
	fi
	PATH=${PATH//$state\/guest-bin:/}
	if [[ ${1:-} == */pty_acceptance.py ]]; then
		if [ -n "${MOCK_ACCEPTANCE_FAIL:-}" ] && [[ " $* " == *" --label ${MOCK_ACCEPTANCE_FAIL} "* ]]; then
			echo "FAIL data-raw: mock failure"
			echo "19 passed, 1 failed, 0 skipped"
			exit 1
		fi
		if [ -n "${MOCK_ACCEPTANCE_ONLY:-}" ]; then
			exec python3 "$@" --only "$MOCK_ACCEPTANCE_ONLY"
		fi
	fi
	exec python3 "$@"
	;;
uname)
	case ${1:-} in
	-s) echo SunOS ;;
	*) echo "SunOS mock 5.11 omnios-mock i86pc i386 i86pc" ;;
	esac
	;;
kstat) printf 'unix:0:system_misc:boot_time\t%s\n' "$(cat "$state/boot_time")" ;;
svcs)
	if [ -n "${MOCK_NO_CLOUDINIT:-}" ]; then
		echo "svcs: Pattern 'svc:/system/cloud-init:final' doesn't match any instances" >&2
		exit 1
	fi
	n=$(cat "$state/ci_probes" 2>/dev/null || echo 0)
	if [ "$n" -gt 0 ]; then
		echo $((n - 1)) >"$state/ci_probes"
		echo offline
	else
		echo online
	fi
	;;
modinfo)
	echo " Id Loadaddr   Size Info Rev Module Name"
	case $(loaded) in
	"") ;;
	/kernel/drv/amd64/ptm) echo "250 fffffffff8a29000   1e48 243   1  ptm (Pseudo-Terminal Manager (Rust))" ;;
	*) echo "250 fffffffff8a29000   1e48 243   1  ptm (Pseudo-Terminal Manager Driver)" ;;
	esac
	;;
modunload)
	if [ -n "${MOCK_BUSY:-}" ] || mock_fail modunload; then
		echo "can't unload the module: Device busy" >&2
		exit 1
	fi
	rm -f "$state/loaded"
	;;
mdb)
	case $* in
	*::modctl*)
		echo "MODCTL           MODULE           BITS FLAGS REF FILE"
		if [ -n "$(loaded)" ]; then echo "fffffe00c0a1b000 fffffe00c0b2c000   li  0x00   1 drv/ptm"; fi
		;;
	*fffffe00c0b2c000::print\ struct\ module\ filename*)
		echo "filename = 0xfffffe00c0d3e000 \"$(loaded)\""
		;;
	*::msgbuf*)
		echo "MESSAGE"
		cat "$state/msgbuf" 2>/dev/null || true
		;;
	*) exit 1 ;;
	esac
	;;
bootadm)
	if mock_fail bootadm; then
		echo "bootadm: mock: cannot update the boot archive" >&2
		exit 1
	fi
	;;
eeprom) ;;
update_drv)
	# update_drv -a -m 'ptmx 0666 root sys' clone
	if [ "${1:-}" = -a ] && [ "${2:-}" = -m ] && [ "${4:-}" = clone ]; then
		echo "clone:$3" >>"$root/etc/minor_perm"
	fi
	;;
logger)
	shift 2
	echo "Jan  1 00:00:00 mock root: [ID 702911 daemon.notice] $*" >>"$root/var/adm/messages"
	;;
rem_drv)
	registered || { echo "Driver (ptm) not installed." >&2; exit 1; }
	raced=0
	if mock_fail rem_drv; then
		open_ptmx 2>/dev/null || true # someone opened /dev/ptmx just now
		raced=1
	fi
	if [ -n "$(loaded)" ]; then
		if [ -n "${MOCK_BUSY:-}" ] || [ "$raced" = 1 ]; then
			# What rem_drv prints and does when MODUNLOAD fails (rem_drv.c,
			# errmsg.h ERR_MODUN): carries on and exits 0.
			echo "Device busy" >&2
			printf 'Cannot unload module: ptm\nWill be unloaded upon reboot.\n' >&2
		else
			rm -f "$state/loaded"
		fi
	fi
	# The binding goes in every case.  Whether rem_drv also drops
	# clone:ptmx is not verified; the mock drops it so that ptm-admin's
	# putting it back is exercised.
	sed -i '/^ptm /d' "$root/etc/name_to_major"
	sed -i '/^clone:ptmx /d' "$root/etc/minor_perm"
	;;
add_drv)
	if mock_fail add_drv; then
		echo "add_drv: mock: cannot add ptm" >&2
		exit 1
	fi
	if registered; then
		echo "Driver (ptm) is already installed." >&2
		exit 1
	fi
	echo "ptm 42" >>"$root/etc/name_to_major"
	;;
reboot | init)
	touch "$state/down"
	sleep 1
	echo $(($(cat "$state/boot_time") + 100)) >"$state/boot_time"
	rm -f "$state/loaded"
	printf 'mock console: boot 2\r\nWARNING: vioif0: a benign warning of this image\r\n%b' \
		"${MOCK_BOOT2_CONSOLE:-}" >>"$(cat "$state/console")"
	if [ -n "${MOCK_BOOT2_MESSAGES:-}" ]; then
		echo "${MOCK_BOOT2_MESSAGES}" >>"$root/var/adm/messages"
	fi
	echo armed >"$state/drop"
	echo "${MOCK_CLOUDINIT_PROBES:-0}" >"$state/ci_probes"
	rm -f "$state/down"
	;;
poweroff) kill "$(cat "$state/qemu.pid")" ;;
*)
	echo "fake.sh: unknown name $name" >&2
	exit 1
	;;
esac
