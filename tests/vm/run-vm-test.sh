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
#      port, the serial console written to console.log;
#   3. runs the acceptance test once against the in-tree C ptm (a baseline:
#      if that fails, the test's expectations are wrong, not the driver);
#   4. installs the module with packaging/ptm-admin.sh as /kernel/drv/amd64/
#      ptm, which krtld finds before the in-tree /usr/kernel/drv/amd64/ptm,
#      and reboots (or, with --method live, unloads the idle ptm instead);
#   5. checks that the loaded ptm is the Rust module, runs the acceptance
#      test, then rem_drv ptm (detach and _fini), add_drv ptm, and a short
#      acceptance run against the reloaded module;
#   6. fails on any panic on the console, on any WARNING on the console after
#      the switch that was not already printed by the in-tree boot, and on
#      any such new WARNING in /var/adm/messages.
#
# Environment (all optional except OMNIOS_IMAGE):
#   OMNIOS_IMAGE     OmniOS cloud image: qcow2, vmdk or raw (decompressed)
#   VM_WORKDIR       logs and scratch files     (default target/vm-test)
#   VM_MEM, VM_CPUS  guest memory in MiB / CPUs (default 2048 / 2)
#   VM_ACCEL         auto, kvm or tcg           (default auto)
#   VM_SSH_PORT      host port for ssh          (default: a free port)
#   VM_SSH_USER      guest user                 (default omnios, then root)
#   VM_BOOT_TIMEOUT  seconds to wait for ssh    (default 900, 2700 on TCG)
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

log() { printf 'vm-test: %s\n' "$*"; }
fail() { printf 'vm-test: FAIL: %s\n' "$*" >&2; exit 1; }
usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit "${1:-0}"
}

while [ $# -gt 0 ]; do
	case $1 in
	--dry-run) dry_run=1 ;;
	--keep) keep=1 ;;
	--method)
		[ $# -ge 2 ] || usage 2
		method=$2
		shift
		;;
	-h | --help) usage 0 ;;
	*) usage 2 ;;
	esac
	shift
done
case $method in reboot | live) ;; *) usage 2 ;; esac

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
# its data sources): the key goes to the image's default user (omnios,
# which has sudo and the Primary Administrator profile) and to root.
instance=ptm-vm-test-$(date +%s)-$$
cat >"$workdir/seed/meta-data" <<EOF
instance-id: $instance
local-hostname: ptm-vm-test
EOF
cat >"$workdir/seed/user-data" <<EOF
#cloud-config
disable_root: false
ssh_authorized_keys:
  - $pubkey
users:
  - default
  - name: root
    ssh_authorized_keys:
      - $pubkey
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
	log "dry run: then: baseline acceptance run on the in-tree ptm; ptm-admin.sh install (--method $method); verify; acceptance run; rem_drv/add_drv; console and messages checks"
	exit 0
fi

[ -f "$kmod" ] || fail "$kmod not found: run make first (or set PTM_KMOD)"
cp "$kmod" "$stage/target/kmod/ptm"
for t in "$qemu" ssh timeout; do
	command -v "$t" >/dev/null 2>&1 || fail "$t not found (apt-get install qemu-system-x86 openssh-client)"
done

# --- boot ------------------------------------------------------------------
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
# vssh CMD: run CMD in the guest (no tty is ever allocated: an open pty
# would keep ptm busy).  Bounded so that a hung guest fails the run.
vssh() { timeout "${VSSH_TIMEOUT:-1800}" ssh "${ssh_opts[@]}" "$user@127.0.0.1" "$@"; }

console_panic() { grep -a -n -E 'panic\[cpu|^panic:|dumping to ' "$console" 2>/dev/null | head -n 5; }

wait_for_ssh() { # $1: boot_time to differ from ("" for the first boot)
	local deadline=$((SECONDS + boot_timeout)) u now
	while [ "$SECONDS" -lt "$deadline" ]; do
		kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU exited; see $workdir/qemu.log and $console"
		if [ -n "$(console_panic)" ]; then
			console_panic
			fail "the guest panicked while booting; see $console"
		fi
		for u in ${VM_SSH_USER:-omnios root}; do
			now=$(timeout 30 ssh "${ssh_opts[@]}" "$u@127.0.0.1" \
				'kstat -p unix:0:system_misc:boot_time' 2>/dev/null | awk '{ print $2 }') || true
			if [ -n "$now" ] && [ "$now" != "$1" ]; then
				user=$u
				boot_time=$now
				return 0
			fi
		done
		sleep "${VM_POLL_INTERVAL:-10}"
	done
	fail "no ssh after ${boot_timeout}s; see $console"
}

boot_time=""
wait_for_ssh ""
log "ssh as $user on 127.0.0.1:$port"

# Copy the staged files in, through ssh (no scp/sftp needed).
if ! tar -C "$stage" --format=ustar -cf - . |
	vssh 'rm -rf /var/tmp/ptm-vm-test && mkdir -p /var/tmp/ptm-vm-test && cd /var/tmp/ptm-vm-test && tar -xf -'; then
	fail "copying the files into the guest failed"
fi
gdir=/var/tmp/ptm-vm-test
vssh "uname -a; head -n 1 /etc/release" >"$workdir/guest.txt" 2>&1 || true
sed 's/^/    /' "$workdir/guest.txt"

# Privilege in the guest, for ptm-admin.sh and eeprom: ptm-admin.sh elevates
# itself; eeprom and reboot go through the same pfexec/sudo.
# shellcheck disable=SC2016  # expanded by the guest's shell
priv=$(vssh 'for p in "" pfexec "sudo -n"; do if [ "$($p /usr/bin/python3 -c "import os; print(os.geteuid())" 2>/dev/null)" = 0 ]; then echo "${p:-none}"; exit 0; fi; done; echo no') || true
case $priv in
none) su="" ;;
pfexec) su=pfexec ;;
"sudo -n") su="sudo -n" ;;
*) fail "user $user cannot become root in the guest (no pfexec profile, no sudo)" ;;
esac

status=0
acceptance() { # $1: log name, $2: label, rest: extra options
	local name=$1 label=$2
	shift 2
	if vssh "cd $gdir && python3 tests/acceptance/pty_acceptance.py --timeout-scale $timeout_scale --label '$label' $*" \
		>"$workdir/$name.txt" 2>&1; then
		log "$name: $(tail -n 1 "$workdir/$name.txt")"
		return 0
	fi
	sed 's/^/    /' "$workdir/$name.txt"
	log "$name: FAILED ($(tail -n 1 "$workdir/$name.txt"))"
	return 1
}

# 3. Baseline on the in-tree driver.
if ! acceptance baseline "in-tree C ptm"; then
	log "the acceptance test fails against the in-tree ptm: its expectations are wrong for this release; fix the test before judging the Rust driver"
	status=1
fi

# 4. Install and switch.
vssh "cd $gdir && bash packaging/ptm-admin.sh messages-mark" || fail "messages-mark failed"
if [ "$method" = reboot ]; then
	vssh "cd $gdir && bash packaging/ptm-admin.sh install" >"$workdir/install.txt" 2>&1 ||
		{ cat "$workdir/install.txt"; fail "ptm-admin.sh install failed"; }
	# Kernel messages on the serial console from the next boot on.
	vssh "$su /usr/sbin/eeprom console=ttya" || log "could not set console=ttya; the console log may stay empty"
	switch_offset=$(wc -c <"$console")
	log "rebooting into the Rust ptm"
	vssh "$su /usr/bin/sh -c '(sleep 2; /usr/sbin/reboot -p || /usr/sbin/init 6) </dev/null >/dev/null 2>&1 &'" || true
	wait_for_ssh "$boot_time"
	log "rebooted; ssh is back"
else
	switch_offset=$(wc -c <"$console")
	vssh "cd $gdir && bash packaging/ptm-admin.sh install --live" >"$workdir/install.txt" 2>&1 ||
		{ cat "$workdir/install.txt"; fail "ptm-admin.sh install --live failed"; }
fi

# 5. Which ptm is loaded, the acceptance test, rem_drv/add_drv.
if ! vssh "cd $gdir && bash packaging/ptm-admin.sh verify --expect rust" 2>&1 | tee "$workdir/verify.txt"; then
	fail "the loaded ptm is not the Rust module (see $workdir/verify.txt); not running the acceptance test against the wrong driver"
fi
acceptance acceptance "Rust ptm" || status=1
if vssh "cd $gdir && bash packaging/ptm-admin.sh remove-driver --readd" >"$workdir/rem_drv.txt" 2>&1; then
	log "rem_drv/add_drv: $(grep 'rem_drv ptm:' "$workdir/rem_drv.txt" || true)"
	acceptance reloaded "Rust ptm after rem_drv/add_drv" \
		"--only '^(open-clone-device|grantpt-unlockpt-ptsname|data-raw|subsidiary-close-eof)\$'" || status=1
else
	sed 's/^/    /' "$workdir/rem_drv.txt"
	log "rem_drv ptm failed"
	status=1
fi

# 6. Kernel messages.
if ! vssh "cd $gdir && PTM_WARN_ALLOW='${VM_WARN_ALLOW:-}' bash packaging/ptm-admin.sh messages-check" >"$workdir/messages-check.txt" 2>&1; then
	sed 's/^/    /' "$workdir/messages-check.txt"
	status=1
fi
vssh "$su cat /var/adm/messages" >"$workdir/messages.txt" 2>/dev/null || true

vssh "$su /usr/sbin/poweroff" >/dev/null 2>&1 || true
for _ in $(seq 60); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 2; done

if [ -n "$(console_panic)" ]; then
	console_panic
	log "panic on the console; see $console"
	status=1
fi
# WARNINGs on the console after the switch that were not printed before it,
# on the console or in /var/adm/messages, while the in-tree driver ran.
warnings() { tr -d '\r' | grep -a -o 'WARNING:.*' | LC_ALL=C sort -u; }
mark_line=$(grep -n 'ptm-admin: messages mark' "$workdir/messages.txt" 2>/dev/null | tail -n 1 | cut -d: -f1)
{
	head -c "$switch_offset" "$console"
	if [ -n "$mark_line" ]; then head -n "$mark_line" "$workdir/messages.txt"; fi
} | warnings >"$workdir/warnings-before.txt" || true
tail -c +"$((switch_offset + 1))" "$console" | warnings >"$workdir/warnings-after.txt" || true
new=$(LC_ALL=C comm -13 "$workdir/warnings-before.txt" "$workdir/warnings-after.txt" |
	{ if [ -n "${VM_WARN_ALLOW:-}" ]; then grep -v -E "$VM_WARN_ALLOW" || true; else cat; fi; })
if [ -n "$new" ]; then
	printf '    %s\n' "$new"
	log "new WARNING lines on the console after the switch"
	status=1
fi

if [ "$status" = 0 ]; then
	log "PASS: the Rust ptm passed the acceptance test on $(head -n 1 "$workdir/guest.txt" | awk '{ print $1, $2, $3, $4 }'); logs in $workdir"
else
	log "FAIL: see the lines above and the logs in $workdir"
fi
exit "$status"
