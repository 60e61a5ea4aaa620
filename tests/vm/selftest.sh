#!/usr/bin/env bash
# selftest.sh: checks of tests/vm/run-vm-test.sh and packaging/ptm-admin.sh
# that need no illumos machine: the skip line, argument and image checks,
# the dry run (seed files, seed ISO, QEMU command line), and, when
# qemu-system-x86_64 is installed, that QEMU accepts that command line.
#
# Prints PASS/FAIL/SKIP lines and "N passed, M failed, K skipped"; exits 1 if
# anything failed.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
runner=$here/run-vm-test.sh
admin=$repo/packaging/ptm-admin.sh
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vm-selftest.XXXXXX")
trap '[ -n "${KEEP_SELFTEST:-}" ] || rm -rf "$tmp"' EXIT

passed=0 failed=0 skipped=0
pass() { printf 'PASS %s: %s\n' "$1" "$2"; passed=$((passed + 1)); }
fail() { printf 'FAIL %s: %s\n' "$1" "$2"; failed=$((failed + 1)); }
skip() { printf 'SKIP %s: %s\n' "$1" "$2"; skipped=$((skipped + 1)); }

# run NAME [ENV=VALUE...] -- ARGS...: runs the runner with a clean
# environment for the VM variables; sets $out and $rc.
run() {
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	out=$(env -u OMNIOS_IMAGE -u VM_ACCEL -u VM_SSH_PORT VM_WORKDIR="$tmp/work" \
		"${envs[@]}" "$runner" "$@" 2>&1)
	rc=$?
}

# 1. No image: exactly one line, exit 0.
run -- --dry-run
lines=$(printf '%s\n' "$out" | wc -l)
if [ "$rc" = 0 ] && [ "$lines" = 1 ] && [[ $out == "vm-test: SKIPPED: OMNIOS_IMAGE not set"* ]]; then
	pass skip-without-image "$out"
else
	fail skip-without-image "rc=$rc, $lines line(s): $out"
fi
run -- 
if [ "$rc" = 0 ] && [[ $out == "vm-test: SKIPPED: "* ]]; then
	pass skip-without-image-no-args "exit 0"
else
	fail skip-without-image-no-args "rc=$rc: $out"
fi

# 2. Bad arguments and bad images.
run -- --method sideways
if [ "$rc" = 2 ]; then pass bad-method "exit 2"; else fail bad-method "rc=$rc"; fi
run OMNIOS_IMAGE="$tmp/missing.qcow2" -- --dry-run
if [ "$rc" = 1 ] && [[ $out == *"no such file"* ]]; then
	pass missing-image "$out"
else
	fail missing-image "rc=$rc: $out"
fi
printf '\375\067\172\130\132\000' >"$tmp/image.raw.xz"
run OMNIOS_IMAGE="$tmp/image.raw.xz" -- --dry-run
if [ "$rc" = 1 ] && [[ $out == *"is compressed"* ]]; then
	pass compressed-image "refused: $out"
else
	fail compressed-image "rc=$rc: $out"
fi

# 3. Dry run with a dummy raw image.
dd if=/dev/zero of="$tmp/dummy.raw" bs=1024 count=1024 2>/dev/null
run OMNIOS_IMAGE="$tmp/dummy.raw" VM_ACCEL=tcg VM_SSH_PORT=2222 -- --dry-run
cmdline=$(cat "$tmp/work/qemu-cmdline.txt" 2>/dev/null)
if [ "$rc" = 0 ] && [[ $out == *"qemu command"* ]] && [ -n "$cmdline" ]; then
	pass dry-run "exit 0, command line written"
else
	fail dry-run "rc=$rc: $out"
fi
missing=()
for want in "qemu-system-x86_64 " "-accel tcg" "-cpu max" \
	"-netdev user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22" \
	"-device virtio-net-pci,netdev=net0" "-serial file:$tmp/work/console.log" \
	"media=cdrom,file=$tmp/work/seed.iso" "-display none"; do
	[[ $cmdline == *"$want"* ]] || missing+=("$want")
done
case $cmdline in *tap* | *bridge*) missing+=("(no tap/bridge networking)") ;; esac
if [ "${#missing[@]}" = 0 ]; then
	pass qemu-command-line "user-mode networking, ssh on 127.0.0.1:2222, serial to console.log, TCG"
else
	fail qemu-command-line "missing: ${missing[*]} in: $cmdline"
fi
if command -v qemu-img >/dev/null 2>&1; then
	backing=$(qemu-img info "$tmp/work/overlay.qcow2" 2>/dev/null | sed -n 's/^backing file: //p')
	if [[ $cmdline == *"file=$tmp/work/overlay.qcow2,format=qcow2"* ]] && [ "$backing" = "$tmp/dummy.raw" ]; then
		pass overlay "the image is only read: writes go to overlay.qcow2 backed by it"
	else
		fail overlay "backing '$backing', command line: $cmdline"
	fi
else
	if [[ $cmdline == *"-snapshot"* ]]; then
		pass overlay "no qemu-img: -snapshot keeps the image unmodified"
	else
		fail overlay "neither an overlay nor -snapshot: $cmdline"
	fi
fi
run OMNIOS_IMAGE="$tmp/dummy.raw" VM_ACCEL=kvm -- --dry-run
if [[ $(cat "$tmp/work/qemu-cmdline.txt") == *"-accel kvm -cpu host"* ]]; then
	pass kvm-command-line "-accel kvm -cpu host"
else
	fail kvm-command-line "$(cat "$tmp/work/qemu-cmdline.txt")"
fi

# 4. The seed.
run OMNIOS_IMAGE="$tmp/dummy.raw" VM_ACCEL=tcg -- --dry-run
key=$(cat "$tmp/work/id_ed25519.pub" 2>/dev/null)
if [ -n "$key" ] && [ "$(grep -c -F -- "$key" "$tmp/work/seed/user-data")" = 2 ] &&
	head -n 1 "$tmp/work/seed/user-data" | grep -qx '#cloud-config' &&
	grep -q '^instance-id: ptm-vm-test-' "$tmp/work/seed/meta-data"; then
	pass seed-files "#cloud-config with the generated key for the default user and root; meta-data with an instance-id"
else
	fail seed-files "user-data/meta-data incomplete"
fi
if command -v genisoimage >/dev/null 2>&1 || command -v mkisofs >/dev/null 2>&1 ||
	command -v xorriso >/dev/null 2>&1 || command -v cloud-localds >/dev/null 2>&1; then
	if [ -s "$tmp/work/seed.iso" ]; then
		if command -v isoinfo >/dev/null 2>&1; then
			label=$(isoinfo -d -i "$tmp/work/seed.iso" | sed -n 's/^Volume id: //p')
			files=$(isoinfo -R -f -i "$tmp/work/seed.iso" | sort | tr '\n' ' ')
			if [ "$label" = cidata ] && [ "$files" = "/meta-data /user-data " ]; then
				pass seed-iso "volume id cidata, files: $files"
			else
				fail seed-iso "volume id '$label', files '$files'"
			fi
		else
			pass seed-iso "$(wc -c <"$tmp/work/seed.iso") bytes (isoinfo not installed: label not read back)"
		fi
	else
		fail seed-iso "an ISO tool is installed but no seed.iso was made"
	fi
else
	skip seed-iso "no genisoimage, mkisofs, xorriso or cloud-localds installed"
fi

# 5. QEMU accepts the command line (the dummy disk does not boot; QEMU must
#    start and keep running).
if command -v qemu-system-x86_64 >/dev/null 2>&1; then
	run OMNIOS_IMAGE="$tmp/dummy.raw" VM_ACCEL=tcg -- --dry-run
	eval "set -- $(cat "$tmp/work/qemu-cmdline.txt")"
	"$@" >"$tmp/qemu.out" 2>&1 &
	qpid=$!
	sleep 3
	if kill -0 "$qpid" 2>/dev/null; then
		pass qemu-starts "$(qemu-system-x86_64 --version | head -n 1) runs with this command line"
		kill "$qpid" 2>/dev/null
		wait "$qpid" 2>/dev/null
	else
		wait "$qpid" 2>/dev/null
		fail qemu-starts "QEMU exited: $(head -c 400 "$tmp/qemu.out")"
	fi
else
	skip qemu-starts "qemu-system-x86_64 not installed"
fi

# 6. ptm-admin.sh refuses to act off illumos, and documents its commands.
if [ "$(uname -s)" != SunOS ]; then
	aout=$(bash "$admin" status 2>&1)
	arc=$?
	if [ "$arc" = 1 ] && [[ $aout == *"this machine runs $(uname -s)"* ]]; then
		pass admin-refuses "$aout"
	else
		fail admin-refuses "rc=$arc: $aout"
	fi
else
	skip admin-refuses "this is illumos"
fi
if bash "$admin" --help | grep -q '^  install '; then
	pass admin-help "lists its commands"
else
	fail admin-help "no usage text"
fi

# 7. Whole runs against a mock guest (tests/vm/mock/fake.sh): the control
#    flow of run-vm-test.sh and ptm-admin.sh end to end -- boot, copy-in,
#    baseline, install, reboot, verify, acceptance (on this machine's ptys),
#    rem_drv/add_drv, the messages and console checks, power-off.  The mock
#    prints illumos-shaped output; it says nothing about illumos itself.
have_iso_tool=0
for t in genisoimage mkisofs xorriso cloud-localds; do
	command -v "$t" >/dev/null 2>&1 && have_iso_tool=1
done
printf 'fake module\n' >"$tmp/fake-kmod"
# mock NAME EXPECT_RC EXPECT_TEXT [ENV=VALUE...] -- [ARGS...]
mock() {
	local name=$1 want_rc=$2 want_text=$3 state envs=() f
	shift 3
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	if [ "$have_iso_tool" = 0 ]; then
		skip "mock-$name" "no ISO tool (genisoimage, xorriso, ...) for the seed"
		return
	fi
	state=$tmp/mock-$name
	mkdir -p "$state/root/etc" "$state/root/var/adm" "$state/root/usr/kernel/drv/amd64" \
		"$state/guest-bin" "$state/host-bin"
	echo "ptm 42" >"$state/root/etc/name_to_major"
	echo "clone:ptmx 0666 root sys" >"$state/root/etc/minor_perm"
	: >"$state/root/var/adm/messages"
	echo "in-tree module" >"$state/root/usr/kernel/drv/amd64/ptm"
	echo 1000 >"$state/boot_time"
	for f in qemu-system-x86_64 ssh; do ln -s "$here/mock/fake.sh" "$state/host-bin/$f"; done
	for f in uname kstat modinfo modunload mdb bootadm eeprom logger rem_drv add_drv \
		update_drv reboot init poweroff; do
		ln -s "$here/mock/fake.sh" "$state/guest-bin/$f"
	done
	out=$(env -u VM_SSH_USER -u VM_WARN_ALLOW PATH="$state/host-bin:$PATH" \
		MOCK_STATE="$state" OMNIOS_IMAGE="$tmp/dummy.raw" PTM_KMOD="$tmp/fake-kmod" \
		VM_WORKDIR="$state/work" VM_ACCEL=kvm VM_POLL_INTERVAL=1 VM_BOOT_TIMEOUT=60 \
		VSSH_TIMEOUT=300 "${envs[@]}" timeout 600 "$runner" "$@" 2>&1)
	rc=$?
	if [ "$rc" = "$want_rc" ] && [[ $out == *"$want_text"* ]]; then
		pass "mock-$name" "exit $rc: $(printf '%s\n' "$out" | grep -F -- "$want_text" | head -n 1)"
	else
		fail "mock-$name" "exit $rc (wanted $want_rc and '$want_text'): $(printf '%s\n' "$out" | tail -n 15)"
	fi
}
mock pass 0 "vm-test: PASS: the Rust ptm passed" --
mock live 0 "vm-test: PASS: the Rust ptm passed" -- --method live
mock wrong-module 1 "the loaded ptm is not the Rust module" \
	MOCK_LOAD_PATH=/usr/kernel/drv/amd64/ptm --
mock new-warning 1 "new WARNING lines on the console after the switch" \
	'MOCK_BOOT2_CONSOLE=WARNING: ptm: a mock failure\r\n' --
mock panic 1 "the guest panicked while booting" \
	'MOCK_BOOT2_CONSOLE=panic[cpu0]/thread=fffffe0001: mock\r\n' --

printf '%d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
[ "$failed" = 0 ]
