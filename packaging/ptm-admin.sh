#!/usr/bin/env bash
# ptm-admin.sh: put the Rust ptm in place of the in-tree illumos ptm, check
# which one the kernel loaded, and take it out again.  Runs on illumos, as
# root (it re-executes itself through pfexec or sudo when it is not).
#
# How the replacement works (docs/illumos.md has the reasoning):
#
#   The in-tree driver is /usr/kernel/drv/amd64/ptm with /usr/kernel/drv/
#   ptm.conf, delivered by pkg:/SUNWcs together with the driver binding
#   (driver name=ptm clone_perms="ptmx 0666 root sys").  krtld searches the
#   module path "/platform/<platform>/kernel /kernel /usr/kernel" in order
#   and loads the first drv/amd64/ptm it finds, so a module installed as
#   /kernel/drv/amd64/ptm is the one loaded the next time ptm is loaded.
#   Nothing of SUNWcs is modified, the driver stays registered as it is,
#   and `pkg verify SUNWcs` stays clean.  ptm is loaded at the first open
#   of /dev/ptmx after boot and stays loaded while any pty is open, so the
#   switch takes effect at the next reboot (or, with --live, immediately
#   if no pty is open at all and the loaded ptm can be unloaded).
#
# Commands:
#   install  [--kmod FILE] [--conf FILE] [--live]
#   rollback [--live]
#   verify   [--expect rust|in-tree]
#   status
#   remove-driver [--readd]
#   messages-mark
#   messages-check
#
# Environment:
#   PTM_RUST_LINKINFO  ERE matched against the module's linkinfo (modinfo's
#                      last column) to recognise the Rust module when the
#                      module's file name cannot be read with mdb.
#                      Default: "Rust".
#   PTM_WARN_ALLOW     ERE of WARNING messages that messages-check accepts.
#   PTM_ADMIN_ROOT     prefix for every file this touches (tests/vm/selftest.sh
#                      runs the script against a mock guest with it).
set -euo pipefail

prog=ptm-admin
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

# Paths as the kernel sees them; files are reached through $root.
RUST_KMOD=/kernel/drv/amd64/ptm
RUST_CONF=/kernel/drv/ptm.conf
INTREE_KMOD=/usr/kernel/drv/amd64/ptm
INTREE_CONF=/usr/kernel/drv/ptm.conf
root=${PTM_ADMIN_ROOT:-}
MESSAGES=$root/var/adm/messages
NAME_TO_MAJOR=$root/etc/name_to_major
MINOR_PERM=$root/etc/minor_perm
MARKER="ptm-admin: messages mark"

# /usr/bin/awk may be the old awk on illumos: prefer nawk for -v and tolower.
if command -v nawk >/dev/null 2>&1; then
	awk() { nawk "$@"; }
fi

say() { printf '%s: %s\n' "$prog" "$*"; }
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }

usage() {
	sed -n '/^# Commands:/,/^# Environment:/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit "${1:-0}"
}

require_illumos() {
	[ "$(uname -s)" = SunOS ] ||
		die "this manages an illumos kernel driver; this machine runs $(uname -s)"
}

become_root() {
	[ "$EUID" -eq 0 ] && return 0
	if [ -z "${PTM_ADMIN_ELEVATED:-}" ]; then
		export PTM_ADMIN_ELEVATED=1
		if command -v pfexec >/dev/null 2>&1 &&
			[ "$(pfexec /usr/bin/python3 -c 'import os; print(os.geteuid())' 2>/dev/null)" = 0 ]; then
			exec pfexec /usr/bin/env bash "$0" "$@"
		fi
		if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
			exec sudo -n -E /usr/bin/env bash "$0" "$@"
		fi
	fi
	die "must run as root (no pfexec profile or passwordless sudo found)"
}

# Load ptm if it is not loaded: the first open of the clone device does it.
load_ptm() {
	python3 -c 'import os; os.close(os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY))' ||
		die "cannot open /dev/ptmx: ptm did not load or attach (see /var/adm/messages; 'modload -p drv/ptm' reports why a module does not load)"
}

ptm_modinfo() { modinfo | awk '$6 == "ptm"'; }
ptm_id() { ptm_modinfo | awk '{ print $1; exit }'; }
ptm_linkinfo() { ptm_modinfo | sed -n 's/.*ptm (\(.*\))[[:space:]]*$/\1/p' | head -n 1; }

# The file krtld loaded ptm from: the krtld dmod's ::modctl lists each
# module's struct module pointer, whose `filename` is the path that was
# opened along the module path.
ptm_loaded_path() {
	local mp
	mp=$(mdb -k -e '::modctl' 2>/dev/null |
		awk '$NF ~ /(^|\/)ptm$/ && $2 !~ /^0+$/ { print $2; exit }') || true
	[ -n "$mp" ] || return 0
	mdb -k -e "${mp}::print struct module filename" 2>/dev/null |
		sed -n 's/.*"\(\/[^"]*\)".*/\1/p' | head -n 1
}

unload_ptm() {
	local id tries
	id=$(ptm_id)
	[ -n "$id" ] || return 0
	for tries in 1 2 3 4 5; do
		if modunload -i "$id" 2>/dev/null; then
			say "unloaded ptm (module id $id)"
			return 0
		fi
		[ "$tries" -lt 5 ] && sleep 1
	done
	die "ptm (module id $id) is in use and cannot be unloaded: close every pseudo-terminal (ssh sessions with a tty, terminal windows) or reboot instead of --live"
}

cmd_install() {
	local kmod="${PTM_KMOD:-$repo/target/kmod/ptm}" conf="${PTM_CONF:-$repo/ptm.conf}" live=0
	while [ $# -gt 0 ]; do
		case $1 in
		--kmod) kmod=$2; shift 2 ;;
		--conf) conf=$2; shift 2 ;;
		--live) live=1; shift ;;
		*) usage 2 ;;
		esac
	done
	[ -f "$kmod" ] || die "$kmod: no such module (build it with make, copy target/kmod/ptm here)"
	[ -f "$root$INTREE_KMOD" ] ||
		say "note: $INTREE_KMOD (the in-tree driver) is not present on this system"
	grep '^ptm ' "$NAME_TO_MAJOR" >/dev/null ||
		die "the ptm driver is not registered (no 'ptm' in /etc/name_to_major); this script replaces the module of the registered in-tree driver"
	mkdir -p "$(dirname "$root$RUST_KMOD")"
	cp "$kmod" "$root$RUST_KMOD.new"
	chown root:sys "$root$RUST_KMOD.new"
	chmod 0755 "$root$RUST_KMOD.new"
	mv -f "$root$RUST_KMOD.new" "$root$RUST_KMOD"
	say "installed $RUST_KMOD"
	if [ -f "$conf" ]; then
		cp "$conf" "$root$RUST_CONF"
		chown root:sys "$root$RUST_CONF"
		chmod 0644 "$root$RUST_CONF"
		say "installed $RUST_CONF"
	fi
	bootadm update-archive
	if [ "$live" = 1 ]; then
		unload_ptm
		load_ptm
		say "ptm reloaded; run '$0 verify' to see which module is loaded"
	else
		say "the Rust ptm is used from the next boot on: reboot (init 6) to switch"
	fi
}

cmd_rollback() {
	local live=0
	[ "${1:-}" = --live ] && live=1
	rm -f "$root$RUST_KMOD" "$root$RUST_CONF"
	say "removed $RUST_KMOD and $RUST_CONF; the in-tree $INTREE_KMOD is next on the module path"
	bootadm update-archive
	if [ "$live" = 1 ]; then
		unload_ptm
		load_ptm
	else
		say "the in-tree ptm is used from the next boot on: reboot (init 6) to switch"
	fi
}

cmd_verify() {
	local expect=rust line linkinfo path which=""
	if [ "${1:-}" = --expect ]; then
		expect=${2:?--expect needs rust or in-tree}
	fi
	load_ptm
	line=$(ptm_modinfo)
	[ -n "$line" ] || die "ptm is not loaded even after opening /dev/ptmx"
	linkinfo=$(ptm_linkinfo)
	path=$(ptm_loaded_path)
	say "modinfo: $line"
	say "loaded from: ${path:-unknown (mdb gave no file name)}"
	case $path in
	"$RUST_KMOD") which=rust ;;
	"$INTREE_KMOD") which=in-tree ;;
	"") if [[ $linkinfo =~ ${PTM_RUST_LINKINFO:-Rust} ]]; then which=rust; fi ;;
	*) which=other ;;
	esac
	if [ -z "$which" ]; then
		say "verify: UNDETERMINED: the file name is unknown and the linkinfo '$linkinfo' does not identify the module"
		exit 3
	fi
	if [ "$which" = "$expect" ]; then
		say "verify: OK: the loaded ptm is the $which module"
		return 0
	fi
	say "verify: MISMATCH: expected the $expect module, the loaded ptm is the $which one"
	exit 1
}

cmd_status() {
	local f
	for f in "$RUST_KMOD" "$RUST_CONF" "$INTREE_KMOD" "$INTREE_CONF"; do
		if [ -f "$root$f" ]; then
			say "present: $(ls -l "$root$f")"
		else
			say "absent:  $f"
		fi
	done
	say "registered: $(grep '^ptm ' "$NAME_TO_MAJOR" || echo no)"
	say "loaded: $(ptm_modinfo || true)"
	say "loaded from: $(ptm_loaded_path || true)"
}

# rem_drv unloads the module: it calls ptm's detach(9E) and _fini(9E).  It
# fails while any pty is open.
cmd_remove_driver() {
	local readd=0
	[ "${1:-}" = --readd ] && readd=1
	load_ptm
	say "before: $(ptm_modinfo)"
	rem_drv ptm
	if [ -n "$(ptm_modinfo)" ]; then
		die "rem_drv ptm succeeded but ptm is still loaded: $(ptm_modinfo)"
	fi
	say "rem_drv ptm: driver removed and module unloaded (detach and _fini ran)"
	if [ "$readd" = 1 ]; then
		# What pkg's driver action for ptm amounts to: the binding, and the
		# clone minor's permissions.
		add_drv ptm
		if ! grep '^clone:ptmx[[:space:]]' "$MINOR_PERM" >/dev/null; then
			update_drv -a -m 'ptmx 0666 root sys' clone
		fi
		load_ptm
		say "add_drv ptm: registered again; loaded: $(ptm_modinfo)"
	fi
}

cmd_messages_mark() {
	logger -p daemon.notice "$MARKER $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	sleep 1
	grep "$MARKER" "$MESSAGES" >/dev/null ||
		die "the mark did not reach $MESSAGES (is system-log running?)"
	say "marked $MESSAGES"
}

# Fails on any panic after the last mark, and on any WARNING after the last
# mark whose text was not already logged before it (that is, under the
# driver that was running then) and does not match PTM_WARN_ALLOW.
cmd_messages_check() {
	local last
	last=$(grep -n "$MARKER" "$MESSAGES" | tail -n 1 | cut -d: -f1)
	[ -n "$last" ] || die "no mark in $MESSAGES: run messages-mark first"
	awk -v from="$last" -v allow="${PTM_WARN_ALLOW:-}" '
		{ i = index($0, "WARNING:"); text = i ? substr($0, i) : "" }
		NR < from { if (text != "") seen[text] = 1; next }
		NR == from { next }
		tolower($0) ~ /panic/ { print "ptm-admin: panic: " $0; bad = 1; next }
		text == "" { next }
		(text in seen) || (allow != "" && text ~ allow) { print "ptm-admin: known warning: " $0; next }
		{ print "ptm-admin: NEW WARNING: " $0; bad = 1 }
		END { exit bad }' "$MESSAGES" ||
		die "new kernel warnings or a panic since the mark (listed above)"
	say "messages-check: no panic and no new WARNING since the mark"
}

[ $# -ge 1 ] || usage 2
command=$1
shift
case $command in
-h | --help | help) usage 0 ;;
install | rollback | verify | status | remove-driver | messages-mark | messages-check) ;;
*) usage 2 ;;
esac
require_illumos
become_root "$command" "$@"
case $command in
install) cmd_install "$@" ;;
rollback) cmd_rollback "$@" ;;
verify) cmd_verify "$@" ;;
status) cmd_status ;;
remove-driver) cmd_remove_driver "$@" ;;
messages-mark) cmd_messages_mark ;;
messages-check) cmd_messages_check ;;
esac
