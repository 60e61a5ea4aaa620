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
#   Nothing of SUNWcs is modified and the driver stays registered as it is.
#   ptm is loaded at the first open of /dev/ptmx and stays loaded while any
#   pty is open, so the switch takes effect at the next reboot (or, with
#   --live, at once if no pty is open and the loaded ptm can be unloaded).
#
# Every command that changes the system leaves a working ptm behind, on
# success and on failure: a failed step puts back what was there before
# (the previous module files and boot archive, the driver binding) and
# checks that /dev/ptmx opens again.  Exit 8 means that this recovery itself
# failed; the message then says what to do by hand.
#
# Commands:
#   install  [--kmod FILE] [--conf FILE] [--live]
#   rollback [--live]
#   verify   [--expect rust|in-tree]
#   status
#   reload-driver
#   messages-mark
#   messages-check
#   evidence [--lines N]
#
# Exit status (the same numbers as tests/vm/run-vm-test.sh and ci-omnios.sh):
#   0  done                      5  ptm does not load (/dev/ptmx fails)
#   1  failed; nothing changed   6  the other module is loaded (verify)
#      (what was changed has     7  ptm is in use and cannot be unloaded;
#      been put back)               the loaded ptm keeps working
#   2  usage                     8  could not go back: see the message
#   3  environment: not illumos, 9  messages-check: a kernel panic
#      not root, missing file   10  messages-check: a new kernel WARNING
#                               11  verify: cannot tell which module it is
#
# Environment:
#   PTM_RUST_LINKINFO  ERE matched against the module's linkinfo (modinfo's
#                      last column) to recognise the Rust module when the
#                      module's file name cannot be read with mdb.
#                      Default: "Rust" (the module's linkinfo is
#                      "Pseudo-Terminal Manager (Rust)").
#   PTM_WARN_ALLOW     ERE of WARNING messages that messages-check accepts.
#   PTM_UNLOAD_TRIES   modunload attempts, a second apart, before ptm counts
#                      as in use (default 5).
#   PTM_ADMIN_ROOT     prefix for every file this touches; set by
#                      tests/vm/selftest.sh, which runs the script against a
#                      mock guest (no privileges are sought then).
set -uo pipefail

prog=ptm-admin
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

EX_FAIL=1 EX_USAGE=2 EX_ENV=3 EX_NOLOAD=5 EX_WRONG=6 EX_BUSY=7 EX_BROKEN=8
EX_PANIC=9 EX_WARN=10 EX_UNKNOWN=11

# Paths as the kernel sees them; files are reached through $root.
RUST_KMOD=/kernel/drv/amd64/ptm
RUST_CONF=/kernel/drv/ptm.conf
INTREE_KMOD=/usr/kernel/drv/amd64/ptm
INTREE_CONF=/usr/kernel/drv/ptm.conf
root=${PTM_ADMIN_ROOT:-}
MESSAGES=$root/var/adm/messages
NAME_TO_MAJOR=$root/etc/name_to_major
MINOR_PERM=$root/etc/minor_perm
# What rem_drv edits (drvsubr.c's remove_entry): kept to put back.
BINDING_FILES="name_to_major minor_perm driver_aliases driver_classes"
MARKER="ptm-admin: messages mark"

# The kernel's own panic lines, and nothing else: panic() prints
# "panic[cpu<N>]/thread=<addr>: <message>" (uts/common/os/panic.c), and
# after the reboot savecore logs "reboot after panic: <message>"
# (cmd/savecore/savecore.c).  Both verified in illumos-gate.
PANIC_ERE='panic\[cpu[0-9]+\]/thread=|reboot after panic: '

# /usr/bin/awk may be the old awk on illumos: prefer nawk for -v and index.
if command -v nawk >/dev/null 2>&1; then
	awk() { nawk "$@"; }
fi

say() { printf '%s: %s\n' "$prog" "$*"; }
warn() { printf '%s: %s\n' "$prog" "$*" >&2; }
# die CODE MESSAGE
die() {
	local code=$1
	shift
	printf '%s: error: %s\n' "$prog" "$*" >&2
	exit "$code"
}

usage() {
	sed -n '/^# Commands:/,/^# Environment:/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit "${1:-0}"
}

require_illumos() {
	[ "$(uname -s)" = SunOS ] ||
		die $EX_ENV "this manages an illumos kernel driver; this machine runs $(uname -s)"
}

become_root() {
	[ -n "$root" ] && return 0 # a test tree: no privileges needed
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
	die $EX_ENV "must run as root (no pfexec profile or passwordless sudo found)"
}

registered() { grep '^ptm[[:space:]]' "$NAME_TO_MAJOR" >/dev/null 2>&1; }

# Opens and closes the clone device; the first open loads and attaches ptm.
# Prints why when it fails.
ptmx_opens() {
	local err
	err=$(python3 -c 'import os, sys; os.close(os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY))' \
		/dev/ptmx 2>&1) && return 0
	ptmx_error=$(printf '%s\n' "$err" | tail -n 1)
	return 1
}
ptmx_error=""

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

# Which module is loaded: rust, in-tree, other, or "" if it cannot be told.
which_loaded() {
	local path linkinfo
	path=$(ptm_loaded_path)
	case $path in
	"$RUST_KMOD") echo rust ;;
	"$INTREE_KMOD") echo in-tree ;;
	"")
		linkinfo=$(ptm_linkinfo)
		if [[ $linkinfo =~ ${PTM_RUST_LINKINFO:-Rust} ]]; then
			echo rust
		elif [ -n "$linkinfo" ]; then
			echo in-tree
		fi
		;;
	*) echo other ;;
	esac
}

# Unloads ptm if it is loaded (modunload runs detach(9E) and _fini(9E)).
# Returns 1, without changing anything, if it is in use.
unload_ptm() {
	local id try=1 tries=${PTM_UNLOAD_TRIES:-5}
	id=$(ptm_id)
	[ -n "$id" ] || return 0
	while :; do
		if modunload -i "$id" 2>/dev/null; then
			say "unloaded ptm (module id $id)"
			return 0
		fi
		[ "$try" -lt "$tries" ] || return 1
		try=$((try + 1))
		sleep 1
	done
}

# Ownership as pkg:/SUNWcs sets it; skipped in a test tree, which an
# unprivileged user may be driving.
own() { [ -n "$root" ] || chown "$@"; }

update_archive() {
	if bootadm update-archive; then
		return 0
	fi
	warn "bootadm update-archive failed"
	return 1
}

# --- the module files, saved and put back -----------------------------------
saved=""
save_files() {
	local f
	saved=$(mktemp -d "${TMPDIR:-/tmp}/ptm-admin.XXXXXX") || die $EX_ENV "mktemp failed"
	for f in "$RUST_KMOD" "$RUST_CONF"; do
		if [ -f "$root$f" ]; then
			cp -p "$root$f" "$saved/$(basename "$(dirname "$f")").$(basename "$f")" ||
				die $EX_ENV "cannot save $f"
		fi
	done
}
# Puts the saved files back (or removes ours where there was none) and
# brings the boot archive in line with them.
restore_files() {
	local f s ok=0
	for f in "$RUST_KMOD" "$RUST_CONF"; do
		s="$saved/$(basename "$(dirname "$f")").$(basename "$f")"
		if [ -f "$s" ]; then
			cp -p "$s" "$root$f.new" && mv -f "$root$f.new" "$root$f" || ok=1
		else
			rm -f "$root$f" || ok=1
		fi
	done
	update_archive || ok=1
	return $ok
}
cleanup_saved() { [ -z "$saved" ] || rm -rf "$saved"; }
trap cleanup_saved EXIT

# ptm works: /dev/ptmx opens.  Otherwise, if a Rust module is installed,
# the last resort is the in-tree module: the Rust files go, and the script
# exits 5 if that works.  If nothing works, it says what to do by hand and
# exits 8.
require_working() {
	if ptmx_opens; then
		return 0
	fi
	if [ -f "$root$RUST_KMOD" ]; then
		warn "/dev/ptmx does not open ($ptmx_error); last resort: removing $RUST_KMOD and $RUST_CONF"
		rm -f "$root$RUST_KMOD" "$root$RUST_CONF"
		update_archive || true
		if ptmx_opens; then
			die $EX_NOLOAD "no Rust module that loads was left to go back to; the Rust files are removed and the in-tree ptm works: $(ptm_modinfo)"
		fi
	fi
	warn "CRITICAL: /dev/ptmx does not open ($ptmx_error) and it could not be put right."
	warn "ssh logins with a terminal will fail; log in on the console.  By hand:"
	warn "  rm -f $RUST_KMOD $RUST_CONF; bootadm update-archive   (back to the in-tree module)"
	warn "  grep '^ptm ' /etc/name_to_major || add_drv ptm; grep '^clone:ptmx' /etc/minor_perm || update_drv -a -m 'ptmx 0666 root sys' clone"
	warn "  then reboot, or pick the previous boot environment at the loader"
	exit $EX_BROKEN
}

# --- commands ---------------------------------------------------------------

cmd_install() {
	local kmod="${PTM_KMOD:-$repo/target/kmod/ptm}" conf="${PTM_CONF:-$repo/ptm.conf}" live=0
	while [ $# -gt 0 ]; do
		case $1 in
		--kmod) [ $# -ge 2 ] || usage $EX_USAGE; kmod=$2; shift 2 ;;
		--conf) [ $# -ge 2 ] || usage $EX_USAGE; conf=$2; shift 2 ;;
		--live) live=1; shift ;;
		*) usage $EX_USAGE ;;
		esac
	done
	[ -f "$kmod" ] || die $EX_ENV "$kmod: no such module (build it with make, copy target/kmod/ptm here)"
	[ -f "$root$INTREE_KMOD" ] ||
		say "note: $INTREE_KMOD (the in-tree driver) is not present on this system"
	registered ||
		die $EX_ENV "the ptm driver is not registered (no 'ptm' in /etc/name_to_major); this script replaces the module of the registered in-tree driver"

	save_files
	mkdir -p "$(dirname "$root$RUST_KMOD")"
	if ! { cp "$kmod" "$root$RUST_KMOD.new" && own root:sys "$root$RUST_KMOD.new" &&
		chmod 0755 "$root$RUST_KMOD.new" && mv -f "$root$RUST_KMOD.new" "$root$RUST_KMOD"; }; then
		rm -f "$root$RUST_KMOD.new"
		restore_files || true
		die $EX_FAIL "copying $kmod to $RUST_KMOD failed; the previous files are back"
	fi
	say "installed $RUST_KMOD"
	if [ -f "$conf" ]; then
		if ! { cp "$conf" "$root$RUST_CONF.new" && own root:sys "$root$RUST_CONF.new" &&
			chmod 0644 "$root$RUST_CONF.new" && mv -f "$root$RUST_CONF.new" "$root$RUST_CONF"; }; then
			rm -f "$root$RUST_CONF.new"
			restore_files || true
			die $EX_FAIL "copying $conf to $RUST_CONF failed; the previous files are back"
		fi
		say "installed $RUST_CONF"
	fi
	if ! update_archive; then
		restore_files || true
		require_working
		die $EX_FAIL "the boot archive could not be updated, so the module was not installed: the previous files are back (a boot archive out of step with /kernel stops the boot-archive service at the next boot)"
	fi

	if [ "$live" = 0 ]; then
		say "the Rust ptm is used from the next boot on: reboot (init 6) to switch"
		return 0
	fi
	if ! unload_ptm; then
		restore_files || true
		require_working
		die $EX_BUSY "ptm (module id $(ptm_id)) is in use and cannot be unloaded: close every pseudo-terminal (ssh sessions with a tty, terminal windows) or install without --live and reboot.  Nothing changed: the previous files are back and the loaded ptm keeps working"
	fi
	if ptmx_opens; then
		say "ptm reloaded: $(ptm_modinfo)"
		return 0
	fi
	warn "the new module did not load: opening /dev/ptmx failed ($ptmx_error)"
	warn "kernel messages:"
	tail -n 10 "$MESSAGES" 2>/dev/null | sed 's/^/    /' >&2
	restore_files || true
	if ptmx_opens; then
		die $EX_NOLOAD "the Rust module does not load; rolled back: the previous files are back and ptm works again ($(ptm_modinfo))"
	fi
	require_working
}

cmd_rollback() {
	local live=0 which
	case ${1:-} in
	--live) live=1 ;;
	"") ;;
	*) usage $EX_USAGE ;;
	esac
	save_files
	if ! rm -f "$root$RUST_KMOD" "$root$RUST_CONF"; then
		restore_files || true
		die $EX_BROKEN "removing $RUST_KMOD and $RUST_CONF failed; they are back as they were"
	fi
	say "removed $RUST_KMOD and $RUST_CONF; the in-tree $INTREE_KMOD is next on the module path"
	if ! update_archive; then
		restore_files || true
		require_working
		die $EX_BROKEN "rollback failed: the boot archive could not be updated, so the Rust files are back (the archive must match /kernel); ptm works, still the Rust module"
	fi
	if [ "$live" = 0 ]; then
		say "the in-tree ptm is used from the next boot on: reboot (init 6) to switch"
		return 0
	fi
	if ! unload_ptm; then
		require_working
		die $EX_BUSY "ptm (module id $(ptm_id)) is in use and cannot be unloaded now; the files are removed, so the in-tree ptm is used from the next boot on, and the loaded one keeps working until then"
	fi
	if ! ptmx_opens; then
		warn "the in-tree module did not load: opening /dev/ptmx failed ($ptmx_error)"
		restore_files || true
		if ptmx_opens; then
			die $EX_BROKEN "rollback failed: the in-tree module does not load; the Rust files are back and ptm works ($(ptm_modinfo))"
		fi
		require_working
	fi
	which=$(which_loaded)
	say "ptm reloaded: $(ptm_modinfo) (${which:-unknown} module)"
}

cmd_verify() {
	local expect=rust line which
	case ${1:-} in
	--expect)
		expect=${2:-}
		case $expect in rust | in-tree) ;; *) usage $EX_USAGE ;; esac
		;;
	"") ;;
	*) usage $EX_USAGE ;;
	esac
	if ! ptmx_opens; then
		say "verify: NOT LOADED: opening /dev/ptmx failed ($ptmx_error): ptm does not load or attach (see 'ptm-admin.sh evidence'; 'modload -p drv/ptm' reports why a module does not load)"
		exit $EX_NOLOAD
	fi
	line=$(ptm_modinfo)
	if [ -z "$line" ]; then
		say "verify: NOT LOADED: /dev/ptmx opened but ptm is not in modinfo"
		exit $EX_NOLOAD
	fi
	say "modinfo: $line"
	say "loaded from: $(ptm_loaded_path || true)"
	which=$(which_loaded)
	case $which in
	"$expect")
		say "verify: OK: the loaded ptm is the $which module"
		;;
	rust | in-tree)
		say "verify: MISMATCH: expected the $expect module, the loaded ptm is the $which one"
		exit $EX_WRONG
		;;
	*)
		say "verify: UNDETERMINED: ptm is loaded from '$(ptm_loaded_path || true)' and its linkinfo '$(ptm_linkinfo)' does not say which module it is"
		exit $EX_UNKNOWN
		;;
	esac
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
	say "registered: $(grep '^ptm[[:space:]]' "$NAME_TO_MAJOR" || echo no)"
	say "loaded: $(ptm_modinfo || true)"
	say "loaded from: $(ptm_loaded_path || true)"
}

# modunload ptm (detach(9E) and _fini(9E) run), then rem_drv ptm and add_drv
# ptm: what pkg's driver action for ptm amounts to, the binding and the
# clone minor's permissions.  For test machines.
#
# rem_drv alone is not used to unload: when the module is busy it still
# removes the binding from /etc/name_to_major and friends and exits 0
# (cmd/modload/rem_drv.c prints "Cannot unload module: ptm / Will be
# unloaded upon reboot." and carries on), which would leave the next boot
# without ptm.  So the module is unloaded first, the binding files are
# saved, and whatever happens the binding is added back.
cmd_reload_driver() {
	local f bindings out rc busy=0 added=0 kept=0 restored=0
	[ $# -eq 0 ] || usage $EX_USAGE
	registered || die $EX_ENV "ptm is not registered (no 'ptm' in /etc/name_to_major)"
	if ! ptmx_opens; then
		die $EX_NOLOAD "ptm does not load now ($ptmx_error); not touching its binding"
	fi
	say "before: $(ptm_modinfo)"
	if ! unload_ptm; then
		require_working
		die $EX_BUSY "ptm (module id $(ptm_id)) is in use and cannot be unloaded (a pty is open); the binding was not touched and ptm keeps working"
	fi
	say "modunload: detach and _fini ran"
	bindings=$(mktemp -d "${TMPDIR:-/tmp}/ptm-admin.XXXXXX") || die $EX_ENV "mktemp failed"
	for f in $BINDING_FILES; do
		[ -f "$root/etc/$f" ] && cp -p "$root/etc/$f" "$bindings/$f"
	done
	out=$(rem_drv ptm 2>&1)
	rc=$?
	printf '%s\n' "$out" | sed '/^$/d; s/^/    rem_drv: /'
	if [ -n "$(ptm_modinfo)" ]; then
		# Something opened /dev/ptmx between modunload and rem_drv.
		busy=1
	fi
	if registered; then
		kept=1
		warn "rem_drv ptm (exit $rc) left the binding in place"
	else
		say "rem_drv ptm: binding removed"
		for _ in 1 2; do
			if add_drv ptm; then
				added=1
				break
			fi
			sleep 1
		done
		if [ "$added" = 0 ]; then
			warn "add_drv ptm failed twice; putting the saved binding files back"
			for f in $BINDING_FILES; do
				[ -f "$bindings/$f" ] && cp -p "$bindings/$f" "$root/etc/$f"
			done
			restored=1
		fi
	fi
	if ! grep '^clone:ptmx[[:space:]]' "$MINOR_PERM" >/dev/null; then
		update_drv -a -m 'ptmx 0666 root sys' clone || warn "update_drv -a -m 'ptmx 0666 root sys' clone failed"
	fi
	rm -rf "$bindings"
	if ! ptmx_opens; then
		warn "ptm does not load after add_drv ($ptmx_error)"
		if [ -f "$root$RUST_KMOD" ]; then
			warn "going back to the in-tree module"
			save_files
			rm -f "$root$RUST_KMOD" "$root$RUST_CONF"
			update_archive || true
			if ptmx_opens; then
				die $EX_NOLOAD "the Rust module does not load again after rem_drv/add_drv; rolled back to the in-tree module, which works ($(ptm_modinfo)); the Rust files are removed"
			fi
		fi
		require_working
	fi
	if [ "$kept" = 1 ]; then
		die $EX_FAIL "rem_drv ptm failed; the binding is unchanged and ptm works: $(ptm_modinfo)"
	fi
	if [ "$restored" = 1 ]; then
		die $EX_FAIL "add_drv ptm failed; the saved binding files are back and /dev/ptmx opens (the running kernel may need a reboot to bind ptm again)"
	fi
	if [ "$busy" = 1 ]; then
		die $EX_BUSY "rem_drv could not unload ptm (a pty was opened meanwhile); the binding is back and ptm works: $(ptm_modinfo)"
	fi
	say "add_drv ptm: registered again; loaded: $(ptm_modinfo)"
}

cmd_messages_mark() {
	logger -p daemon.notice "$MARKER $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	sleep 1
	grep "$MARKER" "$MESSAGES" >/dev/null ||
		die $EX_ENV "the mark did not reach $MESSAGES (is system-log running?)"
	say "marked $MESSAGES"
}

# After the last mark: fails with 9 on the kernel's panic lines (PANIC_ERE,
# case-sensitive: "panic" elsewhere in a line is not a panic), and with 10 on
# any WARNING whose text was not already logged before the mark (under the
# driver that ran then) and does not match PTM_WARN_ALLOW.
cmd_messages_check() {
	local last rc
	last=$(grep -n "$MARKER" "$MESSAGES" | tail -n 1 | cut -d: -f1)
	[ -n "$last" ] || die $EX_ENV "no mark in $MESSAGES: run messages-mark first"
	say "PTM_WARN_ALLOW=${PTM_WARN_ALLOW:-<unset>}"
	# The EREs go through ENVIRON: awk -v would process their backslashes.
	PANIC_ERE=$PANIC_ERE PTM_WARN_ALLOW=${PTM_WARN_ALLOW:-} awk -v from="$last" '
		BEGIN { panic = ENVIRON["PANIC_ERE"]; allow = ENVIRON["PTM_WARN_ALLOW"] }
		{ i = index($0, "WARNING:"); text = i ? substr($0, i) : "" }
		NR < from { if (text != "") seen[text] = 1; next }
		NR == from { next }
		$0 ~ panic { print "ptm-admin: PANIC: " $0; panicked = 1; next }
		text == "" { next }
		(text in seen) || (allow != "" && text ~ allow) { print "ptm-admin: known warning: " $0; next }
		{ print "ptm-admin: NEW WARNING: " $0; warned = 1 }
		END { exit panicked ? 9 : (warned ? 10 : 0) }' "$MESSAGES"
	rc=$?
	case $rc in
	0) say "messages-check: no panic and no new WARNING since the mark" ;;
	9) die $EX_PANIC "a kernel panic since the mark (listed above)" ;;
	10) die $EX_WARN "new kernel WARNINGs since the mark (listed above; PTM_WARN_ALLOW accepts known ones)" ;;
	*) die $EX_ENV "reading $MESSAGES failed" ;;
	esac
}

# What the kernel said: the message buffer (mdb -k ::msgbuf, the dcmd that
# walks log_recentq; works while the module fails to load, when no log
# file may have it yet) and the end of /var/adm/messages.
cmd_evidence() {
	local n=60
	case ${1:-} in
	--lines) n=${2:?--lines needs a number} ;;
	"") ;;
	*) usage $EX_USAGE ;;
	esac
	say "kernel message buffer (mdb -k -e ::msgbuf, last $n lines):"
	mdb -k -e '::msgbuf' 2>&1 | tail -n "$n" | sed 's/^/    /'
	say "tail of /var/adm/messages (last $n lines):"
	tail -n "$n" "$MESSAGES" 2>&1 | sed 's/^/    /'
	say "ptm now: $(ptm_modinfo || true)"
	return 0
}

[ $# -ge 1 ] || usage $EX_USAGE
command=$1
shift
case $command in
-h | --help | help) usage 0 ;;
install | rollback | verify | status | reload-driver | messages-mark | messages-check | evidence) ;;
*) usage $EX_USAGE ;;
esac
require_illumos
become_root "$command" "$@"
case $command in
install) cmd_install "$@" ;;
rollback) cmd_rollback "$@" ;;
verify) cmd_verify "$@" ;;
status) cmd_status ;;
reload-driver) cmd_reload_driver "$@" ;;
messages-mark) cmd_messages_mark ;;
messages-check) cmd_messages_check ;;
evidence) cmd_evidence "$@" ;;
esac
