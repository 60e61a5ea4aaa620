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
trap 'rm -rf "$tmp"' EXIT

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

printf '%d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
[ "$failed" = 0 ]
