#!/usr/bin/env bash
# fake.sh: a mock OmniOS guest for tests/vm/selftest.sh, so that the control
# flow of run-vm-test.sh and ptm-admin.sh runs end to end on Linux.  It proves
# nothing about illumos: the output formats it prints (modinfo, mdb ::modctl,
# ::print, kstat) are the ones those scripts expect, taken from the illumos
# sources, and the "guest" is this machine.
#
# Multi-call: selftest.sh links it under the names below.  State lives in
# $MOCK_STATE; the guest's files under $MOCK_STATE/root (PTM_ADMIN_ROOT).
#
# Host side:  qemu-system-x86_64, ssh
# Guest side: uname kstat modinfo modunload mdb bootadm eeprom logger rem_drv
#             add_drv update_drv reboot init poweroff
#
# Knobs: MOCK_LOAD_PATH (the file "krtld" loads ptm from, instead of the
# first of /kernel, /usr/kernel that exists), MOCK_BOOT2_CONSOLE (text the
# second boot prints on the console).
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

# ptm as loaded: the guest's ptm-admin opens /dev/ptmx before asking, so a
# registered driver that is not loaded yet gets loaded on the query.
loaded() {
	registered || return 1
	[ -f "$state/loaded" ] || module_path >"$state/loaded"
	cat "$state/loaded"
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
	while [ $# -gt 0 ] && [[ $1 != *@127.0.0.1 ]]; do shift; done
	shift
	[ ! -e "$state/down" ] || exit 255
	cmd="$*"
	cmd=${cmd//\/usr\/sbin\//}
	cmd=${cmd//\/var\/adm\//$root/var/adm/}
	cmd=${cmd//\/var\/tmp\//$root/var/tmp/}
	PATH="$state/guest-bin:$PATH" PTM_ADMIN_ROOT=$root exec bash -c "$cmd"
	;;
uname)
	case ${1:-} in
	-s) echo SunOS ;;
	*) echo "SunOS mock 5.11 omnios-mock i86pc i386 i86pc" ;;
	esac
	;;
kstat) printf 'unix:0:system_misc:boot_time\t%s\n' "$(cat "$state/boot_time")" ;;
modinfo)
	echo " Id Loadaddr   Size Info Rev Module Name"
	if loaded >/dev/null; then
		echo "250 fffffffff8a29000   1e48 243   1  ptm (Pseudo-Terminal Manager Driver)"
	fi
	;;
modunload) rm -f "$state/loaded" ;;
mdb)
	case $* in
	*::modctl*)
		echo "MODCTL           MODULE           BITS FLAGS REF FILE"
		if loaded >/dev/null; then echo "fffffe00c0a1b000 fffffe00c0b2c000   li  0x00   1 drv/ptm"; fi
		;;
	*fffffe00c0b2c000::print\ struct\ module\ filename*)
		echo "filename = 0xfffffe00c0d3e000 \"$(loaded)\""
		;;
	*) exit 1 ;;
	esac
	;;
bootadm | eeprom | update_drv) ;;
logger)
	shift 2
	echo "Nov 22 00:00:00 mock root: [ID 702911 daemon.notice] $*" >>"$root/var/adm/messages"
	;;
rem_drv)
	rm -f "$state/loaded"
	sed -i '/^ptm /d' "$root/etc/name_to_major"
	;;
add_drv) echo "ptm 42" >>"$root/etc/name_to_major" ;;
reboot | init)
	touch "$state/down"
	sleep 1
	echo $(($(cat "$state/boot_time") + 100)) >"$state/boot_time"
	rm -f "$state/loaded"
	printf 'mock console: boot 2\r\nWARNING: vioif0: a benign warning of this image\r\n%b' \
		"${MOCK_BOOT2_CONSOLE:-}" >>"$(cat "$state/console")"
	rm -f "$state/down"
	;;
poweroff) kill "$(cat "$state/qemu.pid")" ;;
*)
	echo "fake.sh: unknown name $name" >&2
	exit 1
	;;
esac
