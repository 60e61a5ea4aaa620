#!/usr/bin/env bash
# run-vm-test.sh: the acceptance test of the Rust ptm on a real illumos
# kernel, in an OmniOS cloud image booted with QEMU.  `make vm-test` runs it.
#
# Usage: tests/vm/run-vm-test.sh [--dry-run] [--keep] [--method reboot|live]
#
# Without OMNIOS_IMAGE it prints one line saying that it skipped and exits 0.
#
# What it does (docs/illumos.md explains each choice):
#   1. makes a cloud-init NoCloud seed ISO (volume label "cidata") carrying a
#      fresh ssh key, and a copy-on-write overlay of the image, so the image
#      itself is never modified;
#   2. boots it with qemu-system-x86_64 (KVM when /dev/kvm is usable, TCG
#      otherwise), user-mode networking only, ssh forwarded from a localhost
#      port, the serial console written to console.log; waits until ssh
#      answers, cloud-init's final stage has run, and several probes in a
#      row succeed;
#   3. runs the acceptance test once against the in-tree C ptm (a baseline:
#      if that fails, the test's expectations are wrong, not the driver);
#   4. installs the module with packaging/ptm-admin.sh as /kernel/drv/amd64/
#      ptm, which krtld finds before the in-tree /usr/kernel/drv/amd64/ptm,
#      and reboots (or, with --method live, unloads the idle ptm instead);
#   5. checks that the loaded ptm is the Rust module, runs the acceptance
#      test, unloads ptm and rem_drv/add_drv's it (detach, _fini, a new
#      load), runs a short acceptance pass on the reloaded module, then rolls
#      back to the in-tree module and checks that it is the one loaded;
#   6. fails on a kernel panic on the console or in /var/adm/messages, on any
#      WARNING on the console after the switch that was not already printed
#      by the in-tree boot, and on any such new WARNING in /var/adm/messages.
#   On any failure it prints the kernel's message buffer (mdb ::msgbuf) and
#   the end of /var/adm/messages (ptm-admin.sh evidence, also kept in
#   evidence.txt) and the end of the console log.
#
# Exit status (shared with packaging/ptm-admin.sh and ci-omnios.sh):
#   0 passed                        6 the loaded ptm is not the Rust module
#   1 the acceptance test failed    7 ptm could not be unloaded (in use)
#     (or its baseline did)         8 the rollback to the in-tree ptm failed
#   2 usage                         9 a kernel panic
#   3 setup: tools, image, QEMU,   10 new kernel WARNINGs
#     copying into the guest       11 which ptm is loaded cannot be told
#   4 ssh: the guest never answered, or stopped answering
#   5 the Rust module does not load
#   When several checks fail, the first failure's status is returned; a
#   panic always wins.
#
# Environment (all optional except OMNIOS_IMAGE):
#   OMNIOS_IMAGE     OmniOS cloud image: qcow2, vmdk or raw (decompressed)
#   VM_WORKDIR       logs and scratch files     (default target/vm-test)
#   VM_MEM, VM_CPUS  guest memory in MiB / CPUs (default 2048 / 2)
#   VM_ACCEL         auto, kvm or tcg           (default auto)
#   VM_SSH_PORT      host port for ssh          (default: a free port)
#   VM_SSH_USER      guest user(s) to try       (default omnios)
#   VM_BOOT_TIMEOUT  seconds to wait for ssh    (default 900, 2700 on TCG)
#   VM_SSH_PROBES    successful probes in a row that count as "up" (default 3)
#   VM_SSH_RETRIES   retries of a command whose ssh exits 255 (default 5)
#   VM_POLL_INTERVAL seconds between probes and between retries (default 10)
#   VM_WARN_ALLOW    ERE of console/messages WARNINGs to accept
#   VM_SEED_IF       seed ISO as ide-cdrom (default) or a virtio disk
#   PTM_KMOD         module to test             (default target/kmod/ptm)
#   PTM_CONF         driver.conf to install     (default ptm.conf)
#   QEMU             emulator                   (default qemu-system-x86_64)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

dry_run=0
keep=0
method=reboot

EX_TEST=1 EX_USAGE=2 EX_SETUP=3 EX_SSH=4 EX_NOLOAD=5 EX_WRONG=6 EX_BUSY=7
EX_ROLLBACK=8 EX_PANIC=9 EX_WARN=10 EX_UNKNOWN=11

log() { printf 'vm-test: %s\n' "$*"; }
# Before the guest is up: nothing to collect from it.
fail() { printf 'vm-test: FAIL: %s\n' "$*" >&2; exit $EX_SETUP; }
usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit "${1:-0}"
}

while [ $# -gt 0 ]; do
	case $1 in
	--dry-run) dry_run=1 ;;
	--keep) keep=1 ;;
	--method)
		[ $# -ge 2 ] || usage $EX_USAGE
		method=$2
		shift
		;;
	-h | --help) usage 0 ;;
	*) usage $EX_USAGE ;;
	esac
	shift
done
case $method in reboot | live) ;; *) usage $EX_USAGE ;; esac

if [ -z "${OMNIOS_IMAGE:-}" ]; then
	echo "vm-test: SKIPPED: OMNIOS_IMAGE not set (point it at an OmniOS cloud image to boot the Rust ptm in QEMU; see docs/illumos.md)"
	exit 0
fi

image=$OMNIOS_IMAGE
[ -f "$image" ] || fail "OMNIOS_IMAGE=$image: no such file"
image=$(cd "$(dirname "$image")" && pwd)/$(basename "$image")
workdir=${VM_WORKDIR:-$repo/target/vm-test}
kmod=${PTM_KMOD:-$repo/target/kmod/ptm}
conf=${PTM_CONF:-$repo/ptm.conf}
qemu=${QEMU:-qemu-system-x86_64}
mem=${VM_MEM:-2048}
cpus=${VM_CPUS:-2}

# --- the image's format, from its first bytes ------------------------------
magic=$(head -c 4 "$image" | od -An -tx1 | tr -d ' \n')
case $magic in
514649fb) format=qcow2 ;;
4b444d56) format=vmdk ;;
28b52ffd | fd377a58 | 1f8b* | 425a68*)
	fail "$image is compressed: decompress it first (zstd -d, xz -d, gunzip, bunzip2)" ;;
*) format=raw ;;
esac

# --- acceleration -----------------------------------------------------------
accel=${VM_ACCEL:-auto}
if [ "$accel" = auto ]; then
	if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then accel=kvm; else accel=tcg; fi
fi
case $accel in
kvm) cpu=host ;;
tcg) cpu=max ;;
*) fail "VM_ACCEL=$accel: use auto, kvm or tcg" ;;
esac
if [ "$accel" = tcg ]; then
	boot_timeout=${VM_BOOT_TIMEOUT:-2700}
	timeout_scale=4
else
	boot_timeout=${VM_BOOT_TIMEOUT:-900}
	timeout_scale=1
fi

# --- a free localhost port for ssh ------------------------------------------
port=${VM_SSH_PORT:-}
if [ -z "$port" ]; then
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi

# --- work directory, ssh key, cloud-init seed --------------------------------
rm -rf "$workdir"
mkdir -p "$workdir/seed" "$workdir/stage"
key=$workdir/id_ed25519
if command -v ssh-keygen >/dev/null 2>&1; then
	ssh-keygen -q -t ed25519 -N '' -C ptm-vm-test -f "$key"
	pubkey=$(cat "$key.pub")
elif [ "$dry_run" = 1 ]; then
	pubkey="ssh-ed25519 AAAA-dry-run-placeholder ptm-vm-test"
else
	fail "ssh-keygen not found (install openssh-client)"
fi

# cloud-init (OmniOS cloud images ship omniosorg/cloud-init, NoCloud among
# its data sources): the key goes to the image's default user, omnios, whom
# omniosorg/cloud-init's config gives the Primary Administrator profile and
# sudo.  Not to root: OmniOS's sshd_config has PermitRootLogin no.
# ssh_deletekeys: false keeps cloud-init's ssh module (run once per
# instance) from deleting the host keys while sshd runs, which makes new
# connections fail until keys are generated again; wait_for_ssh below copes
# if that happens anyway.
instance=ptm-vm-test-$(date +%s)-$$
cat >"$workdir/seed/meta-data" <<EOF
instance-id: $instance
local-hostname: ptm-vm-test
EOF
cat >"$workdir/seed/user-data" <<EOF
#cloud-config
ssh_deletekeys: false
ssh_authorized_keys:
  - $pubkey
users:
  - default
EOF

seed=$workdir/seed.iso
seed_tool=""
for t in genisoimage mkisofs xorriso cloud-localds; do
	if command -v "$t" >/dev/null 2>&1; then
		seed_tool=$t
		break
	fi
done
case $seed_tool in
genisoimage | mkisofs)
	"$seed_tool" -quiet -output "$seed" -volid cidata -joliet -rock \
		"$workdir/seed/user-data" "$workdir/seed/meta-data" ;;
xorriso)
	xorriso -as mkisofs -quiet -o "$seed" -V cidata -J -R \
		"$workdir/seed/user-data" "$workdir/seed/meta-data" 2>/dev/null ;;
cloud-localds)
	cloud-localds "$seed" "$workdir/seed/user-data" "$workdir/seed/meta-data" ;;
"")
	if [ "$dry_run" = 0 ]; then
		fail "no ISO tool found: install genisoimage, xorriso or cloud-image-utils"
	fi
	log "dry run: no ISO tool (genisoimage, mkisofs, xorriso, cloud-localds); seed files only"
	;;
esac

# --- the disk: a qcow2 overlay, or QEMU's -snapshot --------------------------
disk_opts=()
if command -v qemu-img >/dev/null 2>&1; then
	disk="$workdir/overlay.qcow2"
	qemu-img create -q -f qcow2 -F "$format" -b "$image" "$disk"
	disk_opts=(-drive "if=virtio,file=$disk,format=qcow2")
else
	disk_opts=(-snapshot -drive "if=virtio,file=$image,format=$format")
fi

# The seed: an IDE CD-ROM by default (an ATAPI device, /dev/dsk/cXtYdZ on
# illumos, where cloud-init's NoCloud looks for a "cidata" hsfs volume), or a
# read-only virtio disk with VM_SEED_IF=virtio.
case ${VM_SEED_IF:-ide-cdrom} in
ide-cdrom) seed_opts=(-drive "if=ide,media=cdrom,file=$seed,format=raw,readonly=on") ;;
virtio) seed_opts=(-drive "if=virtio,file=$seed,format=raw,readonly=on") ;;
*) fail "VM_SEED_IF=${VM_SEED_IF}: use ide-cdrom or virtio" ;;
esac

console=$workdir/console.log
qemu_cmd=("$qemu" -name ptm-vm-test -machine pc -accel "$accel" -cpu "$cpu"
	-m "$mem" -smp "$cpus"
	"${disk_opts[@]}"
	"${seed_opts[@]}"
	-netdev "user,id=net0,hostfwd=tcp:127.0.0.1:$port-:22"
	-device "virtio-net-pci,netdev=net0"
	-display none -monitor none -serial "file:$console"
	-pidfile "$workdir/qemu.pid")

# What goes into the guest, laid out as in the repository.
stage=$workdir/stage
mkdir -p "$stage/target/kmod" "$stage/tests/acceptance" "$stage/packaging"
cp "$repo/tests/acceptance/pty_acceptance.py" "$stage/tests/acceptance/"
cp "$repo/packaging/ptm-admin.sh" "$stage/packaging/"
if [ -f "$conf" ]; then cp "$conf" "$stage/ptm.conf"; fi

# The command line, shell-quoted only where it needs to be.
quote_cmd() {
	local a out=""
	for a in "$@"; do
		if [[ $a =~ ^[][A-Za-z0-9_,=:./@+-]+$ ]]; then out+=" $a"; else out+=" $(printf '%q' "$a")"; fi
	done
	printf '%s\n' "${out# }"
}
quote_cmd "${qemu_cmd[@]}" >"$workdir/qemu-cmdline.txt"

if [ "$dry_run" = 1 ]; then
	log "dry run: image $image ($format), accel $accel, ssh on 127.0.0.1:$port"
	log "dry run: seed files in $workdir/seed${seed_tool:+, ISO $seed (made with $seed_tool)}"
	log "dry run: qemu command (also in $workdir/qemu-cmdline.txt):"
	printf '  %s\n' "$(cat "$workdir/qemu-cmdline.txt")"
	log "dry run: then: baseline acceptance run on the in-tree ptm; ptm-admin.sh install (--method $method); verify; acceptance run; reload-driver; rollback; console and messages checks"
	exit 0
fi

[ -f "$kmod" ] || fail "$kmod not found: run make first (or set PTM_KMOD)"
cp "$kmod" "$stage/target/kmod/ptm"
for t in "$qemu" ssh timeout; do
	command -v "$t" >/dev/null 2>&1 || fail "$t not found (apt-get install qemu-system-x86 openssh-client)"
done

# --- boot ------------------------------------------------------------------
# From here on every failure is handled explicitly (exit statuses above).
set +e

qemu_pid=""
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
	if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
		if [ "$keep" = 1 ]; then
			log "--keep: QEMU (pid $qemu_pid) left running; ssh -p $port -i $key ${user:-omnios}@127.0.0.1"
			return
		fi
		kill "$qemu_pid" 2>/dev/null || true
		sleep 2
		kill -9 "$qemu_pid" 2>/dev/null || true
	fi
}
trap cleanup EXIT

log "booting $image ($format) with $accel; console: $console"
"${qemu_cmd[@]}" >"$workdir/qemu.log" 2>&1 &
qemu_pid=$!

ssh_opts=(-T -i "$key" -p "$port" -o BatchMode=yes -o StrictHostKeyChecking=no
	-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10
	-o ServerAliveInterval=15 -o ServerAliveCountMax=4)
user=""
su=""
gdir=/var/tmp/ptm-vm-test
probes=${VM_SSH_PROBES:-3}
retries=${VM_SSH_RETRIES:-5}
interval=${VM_POLL_INTERVAL:-10}
up=0     # the guest answered ssh
staged=0 # ptm-admin.sh is in the guest
status=0 # the first failure's exit status
first="" # and its message
evidenced=0

# vssh CMD: CMD in the guest, through ssh that never allocates a tty (an
# open pty would keep ptm busy), bounded so that a hung guest fails the
# run.  ssh exits 255 when the connection fails (refused, reset: sshd
# restarting) rather than CMD: that is retried VM_SSH_RETRIES times.
# Returns CMD's status, or 255.
vssh() { vssh_in /dev/null "$@"; }
vssh_in() { # FILE CMD: vssh with FILE on stdin (read again on a retry)
	local in=$1 try=0 rc
	shift
	while :; do
		timeout "${VSSH_TIMEOUT:-1800}" ssh "${ssh_opts[@]}" "$user@127.0.0.1" "$@" <"$in"
		rc=$?
		[ "$rc" = 255 ] || return "$rc"
		try=$((try + 1))
		if [ "$try" -gt "$retries" ]; then
			log "ssh exited 255 $try times in a row"
			return 255
		fi
		log "ssh exited 255 (connection refused or reset: sshd restarting?); retry $try of $retries in ${interval}s" >&2
		sleep "$interval"
	done
}

console_panic() { grep -a -n -E 'panic\[cpu[0-9]+\]/thread=|dumping to ' "$console" 2>/dev/null | head -n 5; }

# record STATUS MESSAGE: a failed check; the run goes on.
record() {
	log "FAIL ($1): $2"
	if [ "$status" = 0 ] || { [ "$1" = "$EX_PANIC" ] && [ "$status" != "$EX_PANIC" ]; }; then
		status=$1
		first=$2
	fi
}

# What the kernel said: ptm-admin.sh evidence (mdb ::msgbuf and the end of
# /var/adm/messages) while ssh works, and the end of the console log.
evidence() {
	[ "$evidenced" = 0 ] || return 0
	evidenced=1
	if [ "$up" = 1 ] && [ "$staged" = 1 ] && [ "$status" != "$EX_SSH" ]; then
		log "kernel evidence (also in $workdir/evidence.txt):"
		vssh "cd $gdir && bash packaging/ptm-admin.sh evidence" >"$workdir/evidence.txt" 2>&1 ||
			echo "(collecting it failed)" >>"$workdir/evidence.txt"
		sed 's/^/    /' "$workdir/evidence.txt"
	fi
	log "end of the console log ($console):"
	tail -n 30 "$console" 2>/dev/null | tr -d '\r' | sed 's/^/    /'
}

shutdown_guest() {
	[ "$up" = 1 ] || return 0
	up=0
	timeout 60 ssh "${ssh_opts[@]}" "$user@127.0.0.1" "$su /usr/sbin/poweroff" </dev/null >/dev/null 2>&1
	for _ in $(seq 60); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 2; done
}

finish() {
	[ "$status" = 0 ] || evidence
	shutdown_guest
	if [ "$status" = 0 ]; then
		log "PASS: the Rust ptm passed the acceptance test on $(head -n 1 "$workdir/guest.txt" | awk '{ print $1, $2, $3, $4 }'); logs in $workdir"
	else
		log "FAIL: $first (exit $status); see the lines above and the logs in $workdir"
	fi
	exit "$status"
}

# die STATUS MESSAGE: a failure after which the run cannot go on.
die() {
	record "$1" "$2"
	finish
}

# The probe: the boot time (it changes with a reboot) and the state of
# cloud-init's last stage, svc:/system/cloud-init:final (a transient SMF
# service in omniosorg/cloud-init's manifest: "online" once `cloud-init
# modules --mode final` has run; other states while it waits or runs).
probe_cmd='kstat -p unix:0:system_misc:boot_time; svcs -H -o state svc:/system/cloud-init:final 2>/dev/null || echo absent'
last_note=""
note() { [ "$1" = "$last_note" ] || log "$1"; last_note=$1; }

# wait_for_ssh BOOT_TIME: until ssh works, the guest runs a boot other than
# BOOT_TIME ("" for the first boot), cloud-init's final stage is done, and
# VM_SSH_PROBES probes in a row have succeeded.  A failed probe resets the
# count: after a reboot sshd may answer once and then restart (cloud-init
# regenerating the host keys), and the next ssh exits 255.
wait_for_ssh() {
	local deadline=$((SECONDS + boot_timeout)) u out rc bt final good=0 last="no answer"
	while [ "$SECONDS" -lt "$deadline" ]; do
		kill -0 "$qemu_pid" 2>/dev/null || die "$EX_SETUP" "QEMU exited; see $workdir/qemu.log and $console"
		if [ -n "$(console_panic)" ]; then
			console_panic
			die "$EX_PANIC" "the guest panicked while booting; see $console"
		fi
		rc=255
		out=""
		for u in ${user:-${VM_SSH_USER:-omnios}}; do
			out=$(timeout 30 ssh "${ssh_opts[@]}" "$u@127.0.0.1" "$probe_cmd" </dev/null 2>/dev/null)
			rc=$?
			if [ "$rc" = 0 ]; then
				user=$u
				break
			fi
		done
		bt=$(printf '%s\n' "$out" | awk '$1 == "unix:0:system_misc:boot_time" { print $2 }')
		final=$(printf '%s\n' "$out" | tail -n 1)
		if [ "$rc" != 0 ]; then
			if [ "$good" -gt 0 ]; then
				note "ssh exited $rc after $good good probe(s) (sshd restarting, e.g. after cloud-init regenerated the host keys); counting again"
			fi
			good=0
			last="ssh exited $rc"
		elif [ -z "$bt" ] || [ "$bt" = "$1" ]; then
			good=0
			last="the guest still runs the previous boot"
		else
			case $final in
			online | absent | maintenance | degraded | disabled)
				[ "$final" = online ] || note "svc:/system/cloud-init:final is $final: not waiting for cloud-init"
				good=$((good + 1))
				last="$good probe(s) in a row"
				if [ "$good" -ge "$probes" ]; then
					boot_time=$bt
					up=1
					return 0
				fi
				;;
			*)
				good=0
				last="svc:/system/cloud-init:final is $final"
				note "waiting for cloud-init's final stage (svc:/system/cloud-init:final is $final)"
				;;
			esac
		fi
		sleep "$interval"
	done
	die "$EX_SSH" "no steady ssh after ${boot_timeout}s (last: $last); see $console"
}

boot_time=""
wait_for_ssh ""
log "ssh as $user on 127.0.0.1:$port"

# Copy the staged files in, through ssh (no scp/sftp needed).
tar -C "$stage" --format=ustar -cf "$workdir/stage.tar" . || die "$EX_SETUP" "tar of the staged files failed"
vssh_in "$workdir/stage.tar" "rm -rf $gdir && mkdir -p $gdir && cd $gdir && tar -xf -"
case $? in
0) staged=1 ;;
255) die "$EX_SSH" "lost ssh while copying the files into the guest" ;;
*) die "$EX_SETUP" "copying the files into the guest failed" ;;
esac
vssh "uname -a; head -n 1 /etc/release" >"$workdir/guest.txt" 2>&1
sed 's/^/    /' "$workdir/guest.txt"

# Privilege in the guest, for eeprom, reboot and poweroff (ptm-admin.sh
# elevates itself the same way).
# shellcheck disable=SC2016  # expanded by the guest's shell
priv=$(vssh 'for p in "" pfexec "sudo -n"; do if [ "$($p /usr/bin/python3 -c "import os; print(os.geteuid())" 2>/dev/null)" = 0 ]; then echo "${p:-none}"; exit 0; fi; done; echo no')
[ $? = 255 ] && die "$EX_SSH" "lost ssh while checking privileges"
case $priv in
none) su="" ;;
pfexec) su=pfexec ;;
"sudo -n") su="sudo -n" ;;
*) die "$EX_SETUP" "user $user cannot become root in the guest (no pfexec profile, no sudo)" ;;
esac

# admin NAME ARGS...: ptm-admin.sh ARGS in the guest, its output shown and
# kept in NAME.txt; returns its exit status (ptm-admin.sh's statuses mean
# what ours do).  A lost ssh ends the run.
admin() {
	local name=$1 rc
	shift
	vssh "cd $gdir && $* " >"$workdir/$name.txt" 2>&1
	rc=$?
	sed 's/^/    /' "$workdir/$name.txt"
	[ "$rc" != 255 ] || die "$EX_SSH" "lost ssh to the guest during: $*"
	return "$rc"
}
ptm_admin() { local name=$1; shift; admin "$name" bash packaging/ptm-admin.sh "$@"; }

acceptance() { # $1: log name, $2: label, rest: extra options
	local name=$1 label=$2 rc
	shift 2
	vssh "cd $gdir && python3 tests/acceptance/pty_acceptance.py --timeout-scale $timeout_scale --label '$label' $*" \
		>"$workdir/$name.txt" 2>&1
	rc=$?
	[ "$rc" != 255 ] || die "$EX_SSH" "lost ssh to the guest during the acceptance run '$label'"
	if [ "$rc" = 0 ]; then
		log "$name: $(tail -n 1 "$workdir/$name.txt")"
		return 0
	fi
	sed 's/^/    /' "$workdir/$name.txt"
	log "$name: FAILED ($(tail -n 1 "$workdir/$name.txt"))"
	return 1
}

# 3. Baseline on the in-tree driver.
if ! acceptance baseline "in-tree C ptm"; then
	record "$EX_TEST" "the acceptance test fails against the in-tree ptm: its expectations are wrong for this release; fix the test before judging the Rust driver"
fi

# 4. Install and switch.
ptm_admin mark messages-mark || die "$EX_SETUP" "messages-mark failed"
if [ "$method" = reboot ]; then
	ptm_admin install install
	rc=$?
	case $rc in
	0) ;;
	8) die "$EX_ROLLBACK" "ptm-admin.sh install failed and could not put things back (see install.txt)" ;;
	*) die "$EX_SETUP" "ptm-admin.sh install failed (exit $rc; see install.txt)" ;;
	esac
	# Kernel messages on the serial console from the next boot on.
	vssh "$su /usr/sbin/eeprom console=ttya" || log "could not set console=ttya; the console log may stay empty"
	switch_offset=$(wc -c <"$console")
	log "rebooting into the Rust ptm"
	# One connection, not retried: it goes down with the guest.
	timeout 60 ssh "${ssh_opts[@]}" "$user@127.0.0.1" \
		"$su /usr/bin/sh -c '(sleep 2; /usr/sbin/reboot -p || /usr/sbin/init 6) </dev/null >/dev/null 2>&1 &'" </dev/null
	up=0
	wait_for_ssh "$boot_time"
	log "rebooted; ssh is back"
else
	switch_offset=$(wc -c <"$console")
	ptm_admin install install --live
	rc=$?
	case $rc in
	0) ;;
	5) die "$EX_NOLOAD" "the Rust module does not load (install --live rolled back to the previous module; see install.txt and the kernel evidence)" ;;
	7) die "$EX_BUSY" "ptm could not be unloaded for install --live (a pty is open)" ;;
	8) die "$EX_ROLLBACK" "install --live failed and could not put things back (see install.txt)" ;;
	*) die "$EX_SETUP" "ptm-admin.sh install --live failed (exit $rc; see install.txt)" ;;
	esac
fi

# 5. Which ptm is loaded, the acceptance test, unload and rebind, rollback.
ptm_admin verify verify --expect rust
rc=$?
case $rc in
0) ;;
5) die "$EX_NOLOAD" "the Rust module does not load: /dev/ptmx does not open (see verify.txt and the kernel evidence below)" ;;
6) die "$EX_WRONG" "the loaded ptm is not the Rust module (see verify.txt); not running the acceptance test against the wrong driver" ;;
11) die "$EX_UNKNOWN" "which ptm is loaded cannot be told (see verify.txt)" ;;
*) die "$EX_SETUP" "ptm-admin.sh verify failed (exit $rc; see verify.txt)" ;;
esac
acceptance acceptance "Rust ptm" || record "$EX_TEST" "the acceptance test fails against the Rust ptm"

ptm_admin reload reload-driver
rc=$?
rolled_back=0
case $rc in
0)
	acceptance reloaded "Rust ptm after rem_drv/add_drv" \
		"--only '^(open-clone-device|grantpt-unlockpt-ptsname|data-raw|subsidiary-close-eof)\$'" ||
		record "$EX_TEST" "the acceptance test fails against the reloaded Rust ptm"
	;;
5)
	rolled_back=1
	record "$EX_NOLOAD" "the Rust module does not load again after modunload and rem_drv/add_drv (ptm-admin.sh went back to the in-tree module; see reload.txt)"
	;;
7) record "$EX_BUSY" "ptm could not be unloaded (modunload or rem_drv: in use; see reload.txt)" ;;
8) die "$EX_ROLLBACK" "reload-driver failed and ptm could not be put right (see reload.txt)" ;;
*) record "$rc" "ptm-admin.sh reload-driver failed (exit $rc; see reload.txt)" ;;
esac

if [ "$rolled_back" = 0 ]; then
	ptm_admin rollback rollback --live
	rc=$?
	case $rc in
	0)
		ptm_admin verify-in-tree verify --expect in-tree ||
			record "$EX_ROLLBACK" "after the rollback the loaded ptm is not the in-tree module (see verify-in-tree.txt)"
		;;
	7) record "$EX_BUSY" "ptm could not be unloaded for the rollback (in use; see rollback.txt)" ;;
	*) record "$EX_ROLLBACK" "the rollback to the in-tree ptm failed (exit $rc; see rollback.txt)" ;;
	esac
fi

# 6. Kernel messages.
admin messages-check env PTM_WARN_ALLOW="$(printf %q "${VM_WARN_ALLOW:-}")" bash packaging/ptm-admin.sh messages-check
case $? in
0) ;;
9) record "$EX_PANIC" "a kernel panic in /var/adm/messages (see messages-check.txt)" ;;
10) record "$EX_WARN" "new kernel WARNINGs in /var/adm/messages since the install (see messages-check.txt; VM_WARN_ALLOW accepts known ones)" ;;
*) record "$EX_SETUP" "ptm-admin.sh messages-check failed (see messages-check.txt)" ;;
esac
vssh "$su cat /var/adm/messages" >"$workdir/messages.txt" 2>/dev/null

# The console: a panic, and WARNINGs after the switch that were not printed
# before it, on the console or in /var/adm/messages, while the in-tree
# driver ran.
check_console() {
	local mark_line new
	if [ -n "$(console_panic)" ]; then
		console_panic
		record "$EX_PANIC" "a kernel panic on the console; see $console"
	fi
	warnings() { tr -d '\r' | grep -a -o 'WARNING:.*' | LC_ALL=C sort -u; }
	mark_line=$(grep -n 'ptm-admin: messages mark' "$workdir/messages.txt" 2>/dev/null | tail -n 1 | cut -d: -f1)
	{
		head -c "$switch_offset" "$console"
		if [ -n "$mark_line" ]; then head -n "$mark_line" "$workdir/messages.txt"; fi
	} | warnings >"$workdir/warnings-before.txt"
	tail -c +"$((switch_offset + 1))" "$console" | warnings >"$workdir/warnings-after.txt"
	new=$(LC_ALL=C comm -13 "$workdir/warnings-before.txt" "$workdir/warnings-after.txt" |
		{ if [ -n "${VM_WARN_ALLOW:-}" ]; then grep -v -E "$VM_WARN_ALLOW"; else cat; fi; })
	if [ -n "$new" ]; then
		printf '    %s\n' "$new"
		record "$EX_WARN" "new WARNING lines on the console after the switch"
	fi
}
check_console
[ "$status" = 0 ] || evidence

# A panic while powering off still counts.
shutdown_guest
if [ "$status" != "$EX_PANIC" ] && [ -n "$(console_panic)" ]; then
	console_panic
	record "$EX_PANIC" "a kernel panic on the console while powering off; see $console"
fi
finish
