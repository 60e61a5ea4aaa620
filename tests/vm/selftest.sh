#!/usr/bin/env bash
# selftest.sh: checks of tests/vm/run-vm-test.sh, tests/vm/ci-omnios.sh and
# packaging/ptm-admin.sh that need no illumos machine: the skip line,
# argument and image checks, the dry run (seed files, seed ISO, QEMU command
# line), QEMU accepting that command line when qemu-system-x86_64 is
# installed; then, against the mock guest of tests/vm/mock/fake.sh, every
# path of ptm-admin.sh (each must leave a working ptm), messages-check's
# panic and WARNING rules, and whole runs of run-vm-test.sh and ci-omnios.sh
# for each failure they tell apart (exit status and message); and the
# recipe of `make package` with stand-in IPS tools.
#
# Prints PASS/FAIL/SKIP lines and "N passed, M failed, K skipped"; exits 1 if
# anything failed.
# The checks passed to expect() are shell code, evaluated later on purpose:
# shellcheck disable=SC2016
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
if [ "$rc" = 3 ] && [[ $out == *"no such file"* ]]; then
	pass missing-image "$out"
else
	fail missing-image "rc=$rc: $out"
fi
printf '\375\067\172\130\132\000' >"$tmp/image.raw.xz"
run OMNIOS_IMAGE="$tmp/image.raw.xz" -- --dry-run
if [ "$rc" = 3 ] && [[ $out == *"is compressed"* ]]; then
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
if [ -n "$key" ] && [ "$(grep -c -F -- "$key" "$tmp/work/seed/user-data")" = 1 ] &&
	head -n 1 "$tmp/work/seed/user-data" | grep -qx '#cloud-config' &&
	grep -qx 'ssh_deletekeys: false' "$tmp/work/seed/user-data" &&
	! grep -q 'root' "$tmp/work/seed/user-data" &&
	grep -q '^instance-id: ptm-vm-test-' "$tmp/work/seed/meta-data"; then
	pass seed-files "#cloud-config: the generated key for the default user only (PermitRootLogin no), ssh_deletekeys: false; meta-data with an instance-id"
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
	if [ "$arc" = 3 ] && [[ $aout == *"this machine runs $(uname -s)"* ]]; then
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

# 7. The mock guest (tests/vm/mock/fake.sh): a file tree with the in-tree
#    module and ptm's binding, fake illumos commands, and a mock kernel that
#    loads ptm at the first open of /dev/ptmx.  It models what the scripts
#    rely on; it says nothing about illumos itself.
printf 'fake module\n' >"$tmp/fake-kmod"
printf 'fake module, second build\n' >"$tmp/fake-kmod-2"
printf 'BROKEN module: does not load\n' >"$tmp/broken-kmod"

# new_guest NAME: a fresh mock guest in $tmp/NAME, with the in-tree ptm
# loaded as on a running system; sets $g.
new_guest() {
	local f
	g=$tmp/$1
	rm -rf "$g"
	mkdir -p "$g/root/etc" "$g/root/var/adm" "$g/root/var/tmp" \
		"$g/root/usr/kernel/drv/amd64" "$g/guest-bin" "$g/host-bin"
	echo "ptm 42" >"$g/root/etc/name_to_major"
	echo "clone:ptmx 0666 root sys" >"$g/root/etc/minor_perm"
	: >"$g/root/var/adm/messages"
	: >"$g/console.log"
	echo "$g/console.log" >"$g/console"
	echo "in-tree module" >"$g/root/usr/kernel/drv/amd64/ptm"
	echo 1000 >"$g/boot_time"
	for f in qemu-system-x86_64 ssh mockctl; do ln -s "$here/mock/fake.sh" "$g/host-bin/$f"; done
	for f in uname kstat svcs modinfo modunload mdb bootadm eeprom logger rem_drv add_drv \
		update_drv reboot init poweroff python3; do
		ln -s "$here/mock/fake.sh" "$g/guest-bin/$f"
	done
	works >/dev/null
}
# in_guest [ENV=VALUE...] -- CMD...: CMD as the guest runs it; sets $out, $rc.
in_guest() {
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	out=$(env MOCK_STATE="$g" PTM_ADMIN_ROOT="$g/root" PATH="$g/guest-bin:$PATH" \
		PTM_UNLOAD_TRIES=2 "${envs[@]}" "$@" 2>&1)
	rc=$?
}
adm() { # [ENV=VALUE...] -- ARGS...: ptm-admin.sh ARGS in the guest
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	in_guest "${envs[@]}" -- bash "$admin" "$@"
}
# works: the mock /dev/ptmx opens (ptm bound, permitted, and it loads).
works() { MOCK_STATE="$g" "$g/host-bin/mockctl" works 2>&1; }
loaded() { MOCK_STATE="$g" "$g/host-bin/mockctl" loaded; }
rust_file() { cat "$g/root/kernel/drv/amd64/ptm" 2>/dev/null || echo "(absent)"; }

# expect NAME WANT_RC WANT_TEXT [CONDITION]: the last run's status and
# output, that ptm works afterwards, and CONDITION (shell code) if given.
expect() {
	local name=$1 want_rc=$2 want_text=$3 cond=${4:-} w
	w=$(works)
	if [ "$rc" != "$want_rc" ] || [[ $out != *"$want_text"* ]]; then
		fail "$name" "exit $rc (wanted $want_rc and '$want_text'): $(printf '%s\n' "$out" | tail -n 8)"
	elif [[ $w != works:* ]]; then
		fail "$name" "exit $rc as wanted, but ptm does not work afterwards: $w"
	elif [ -n "$cond" ] && ! eval "$cond"; then
		fail "$name" "exit $rc as wanted and ptm works, but not: $cond (module file: $(rust_file); loaded: $(loaded))"
	else
		pass "$name" "exit $rc, $w: $(printf '%s\n' "$out" | grep -F -- "$want_text" | head -n 1)"
	fi
}
# also NAME TEXT...: each TEXT is in the last run's output ("!TEXT": is not).
also() {
	local name=$1 t
	shift
	for t in "$@"; do
		if [[ $t == '!'* ]]; then
			if [[ $out == *"${t#!}"* ]]; then fail "$name" "the output has '${t#!}'"; return; fi
		elif [[ $out != *"$t"* ]]; then
			fail "$name" "the output lacks '$t': $(printf '%s\n' "$out" | tail -n 8)"
			return
		fi
	done
	pass "$name" "the output has: $*"
}

# 8. Every path of ptm-admin.sh, success or failure, leaves a working ptm.
new_guest a-install
adm -- install --kmod "$tmp/fake-kmod" --conf "$repo/ptm.conf"
expect admin-install 0 "used from the next boot on" \
	'[ "$(rust_file)" = "fake module" ] && [ -f "$g/root/kernel/drv/ptm.conf" ] && [ "$(loaded)" = /usr/kernel/drv/amd64/ptm ]'

new_guest a-live
adm -- install --kmod "$tmp/fake-kmod" --live
expect admin-install-live 0 "ptm reloaded" '[ "$(loaded)" = /kernel/drv/amd64/ptm ]'
adm -- verify --expect rust
expect admin-verify 0 "verify: OK: the loaded ptm is the rust module"
adm -- verify --expect in-tree
expect admin-verify-mismatch 6 "verify: MISMATCH: expected the in-tree module"
adm -- rollback --live
expect admin-rollback-live 0 "(in-tree module)" \
	'[ "$(rust_file)" = "(absent)" ] && [ "$(loaded)" = /usr/kernel/drv/amd64/ptm ]'

new_guest a-live-busy
adm MOCK_BUSY=1 -- install --kmod "$tmp/fake-kmod" --live
expect admin-install-live-busy 7 "in use and cannot be unloaded" \
	'[ "$(rust_file)" = "(absent)" ] && [ "$(loaded)" = /usr/kernel/drv/amd64/ptm ]'

new_guest a-live-noload
adm -- install --kmod "$tmp/broken-kmod" --live
expect admin-install-live-noload 5 "the Rust module does not load; rolled back" \
	'[ "$(rust_file)" = "(absent)" ] && [ "$(loaded)" = /usr/kernel/drv/amd64/ptm ]'

new_guest a-live-over-broken
adm -- install --kmod "$tmp/broken-kmod"
in_guest -- reboot
adm -- install --kmod "$tmp/broken-kmod" --live
expect admin-install-live-over-broken 5 "the in-tree ptm works" \
	'[ "$(rust_file)" = "(absent)" ] && [ "$(loaded)" = /usr/kernel/drv/amd64/ptm ]'

new_guest a-archive
adm MOCK_FAIL=bootadm:1 -- install --kmod "$tmp/fake-kmod"
expect admin-install-archive-fails 1 "the boot archive could not be updated" \
	'[ "$(rust_file)" = "(absent)" ]'

new_guest a-reinstall
adm -- install --kmod "$tmp/fake-kmod"
adm MOCK_FAIL=bootadm:2 -- install --kmod "$tmp/fake-kmod-2"
expect admin-reinstall-archive-fails 1 "the previous files are back" \
	'[ "$(rust_file)" = "fake module" ]'

new_guest a-rollback-busy
adm -- install --kmod "$tmp/fake-kmod" --live
adm MOCK_BUSY=1 -- rollback --live
expect admin-rollback-live-busy 7 "the in-tree ptm is used from the next boot on" \
	'[ "$(rust_file)" = "(absent)" ] && [ "$(loaded)" = /kernel/drv/amd64/ptm ]'

new_guest a-rollback-archive
adm -- install --kmod "$tmp/fake-kmod" --live
adm MOCK_FAIL=bootadm:2 -- rollback
expect admin-rollback-archive-fails 8 "rollback failed: the boot archive could not be updated" \
	'[ "$(rust_file)" = "fake module" ]'

new_guest a-rollback-intree-noload
adm -- install --kmod "$tmp/fake-kmod" --live
echo "BROKEN in-tree module" >"$g/root/usr/kernel/drv/amd64/ptm"
adm -- rollback --live
expect admin-rollback-intree-noload 8 "the in-tree module does not load; the Rust files are back" \
	'[ "$(rust_file)" = "fake module" ] && [ "$(loaded)" = /kernel/drv/amd64/ptm ]'

new_guest a-noload-boot
adm -- install --kmod "$tmp/broken-kmod"
in_guest -- reboot
adm -- verify
if [ "$rc" = 5 ] && [[ $out == *"verify: NOT LOADED"* ]] && [[ $(works) != works:* ]]; then
	pass admin-verify-noload "exit 5: $(printf '%s\n' "$out" | grep -F 'NOT LOADED')"
else
	fail admin-verify-noload "exit $rc (wanted 5, NOT LOADED, and no working ptm in this state): $out"
fi
adm -- evidence
also admin-evidence "kernel message buffer (mdb -k -e ::msgbuf" "WARNING: mod_load: cannot load module 'ptm'" \
	"tail of /var/adm/messages"
adm -- rollback --live
expect admin-rollback-after-noload 0 "(in-tree module)" '[ "$(rust_file)" = "(absent)" ]'

new_guest a-undetermined
mkdir -p "$g/root/opt"
echo "someone else's module" >"$g/root/opt/ptm"
in_guest -- modunload -i 250
adm MOCK_LOAD_PATH=/opt/ptm -- verify --expect rust
expect admin-verify-undetermined 11 "verify: UNDETERMINED"

new_guest a-reload
adm -- reload-driver
expect admin-reload 0 "add_drv ptm: registered again" \
	'grep -q "^ptm " "$g/root/etc/name_to_major" && grep -q "^clone:ptmx " "$g/root/etc/minor_perm"'

new_guest a-reload-busy
cp "$g/root/etc/name_to_major" "$tmp/name_to_major.before"
adm MOCK_BUSY=1 -- reload-driver
expect admin-reload-busy 7 "the binding was not touched" \
	'cmp -s "$tmp/name_to_major.before" "$g/root/etc/name_to_major"'

new_guest a-reload-race
adm MOCK_FAIL=rem_drv:1 -- reload-driver
expect admin-reload-race 7 "rem_drv could not unload ptm" 'grep -q "^ptm " "$g/root/etc/name_to_major"'

new_guest a-reload-add-once
adm MOCK_FAIL=add_drv:1 -- reload-driver
expect admin-reload-add-drv-retried 0 "add_drv ptm: registered again"

new_guest a-reload-add-twice
adm MOCK_FAIL=add_drv:1,add_drv:2 -- reload-driver
expect admin-reload-add-drv-fails 1 "the saved binding files are back" \
	'grep -q "^ptm " "$g/root/etc/name_to_major"'

new_guest a-reload-noload
adm -- install --kmod "$tmp/fake-kmod" --live
echo "BROKEN after its first _fini" >"$g/root/kernel/drv/amd64/ptm"
adm -- reload-driver
expect admin-reload-rust-noload 5 "rolled back to the in-tree module" \
	'[ "$(rust_file)" = "(absent)" ] && [ "$(loaded)" = /usr/kernel/drv/amd64/ptm ]'

# 9. messages-check: the kernel's panic lines only; new WARNINGs;
#    PTM_WARN_ALLOW (backslashes reach the ERE unchanged).
new_guest m
msg() { echo "Jan  1 00:00:01 mock $*" >>"$g/root/var/adm/messages"; }
msg "genunix: [ID 100000 kern.warning] WARNING: vioif0: seen before the mark"
adm -- messages-mark
msg "root: [ID 100001 daemon.notice] Panic button tests: kernel_panic_hook PANIC panicked"
msg "genunix: [ID 100000 kern.warning] WARNING: vioif0: seen before the mark"
adm -- messages-check
expect messages-panic-word 0 "no panic and no new WARNING since the mark"
msg "unix: [ID 100002 kern.notice] panic[cpu0]/thread=fffffe0001a2b3c0: BAD TRAP: type=e"
adm -- messages-check
expect messages-panic-line 9 "ptm-admin: PANIC: "
adm -- messages-mark
msg "savecore: [ID 570001 auth.error] reboot after panic: BAD TRAP: type=e"
adm -- messages-check
expect messages-savecore-panic 9 "reboot after panic"
adm -- messages-mark
msg "ptm: [ID 100003 kern.warning] WARNING: ptm: (x) happened"
adm -- messages-check
expect messages-new-warning 10 "NEW WARNING: "
adm 'PTM_WARN_ALLOW=ptm: \(x\) happened$' -- messages-check
expect messages-warn-allow 0 "known warning: "

# 10. Whole runs of run-vm-test.sh against the mock guest: boot, copy-in,
#     baseline, install, reboot, verify, acceptance (on this machine's
#     ptys), reload-driver, rollback, the messages and console checks,
#     power-off -- and each failure with its own status and message.
have_iso_tool=0
for t in genisoimage mkisofs xorriso cloud-localds; do
	command -v "$t" >/dev/null 2>&1 && have_iso_tool=1
done
# mock NAME [ENV=VALUE...] -- [ARGS...]: starts a whole run in the
# background, at most six at a time (they mostly sleep: polls, reboots).
mock() {
	local name=$1 envs=()
	shift
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	[ "$have_iso_tool" = 1 ] || return 0
	while [ "$(jobs -rp | wc -l)" -ge 6 ]; do wait -n; done
	new_guest "vm-$name"
	(
		env -u VM_SSH_USER -u VM_WARN_ALLOW PATH="$g/host-bin:$PATH" \
			MOCK_STATE="$g" OMNIOS_IMAGE="$tmp/dummy.raw" PTM_KMOD="$tmp/fake-kmod" \
			VM_WORKDIR="$g/work" VM_ACCEL=kvm VM_POLL_INTERVAL=1 VM_BOOT_TIMEOUT=60 \
			VM_SSH_PROBES=2 VM_SSH_RETRIES=3 VSSH_TIMEOUT=300 MOCK_ACCEPTANCE_ONLY="$quick" \
			PTM_UNLOAD_TRIES=2 \
			"${envs[@]}" timeout 600 "$runner" "$@" >"$g/out" 2>&1
		echo $? >"$g/rc"
	) &
}
# result NAME WANT_RC WANT_TEXT: waits for the run; sets $out and $rc.
result() {
	local name=$1 want_rc=$2 want_text=$3
	if [ "$have_iso_tool" = 0 ]; then
		skip "vm-$name" "no ISO tool (genisoimage, xorriso, ...) for the seed"
		out=""
		return 1
	fi
	g=$tmp/vm-$name
	while [ ! -s "$g/rc" ]; do wait -n 2>/dev/null || sleep 1; done
	out=$(cat "$g/out")
	rc=$(cat "$g/rc")
	if [ "$rc" = "$want_rc" ] && [[ $out == *"$want_text"* ]]; then
		pass "vm-$name" "exit $rc: $(printf '%s\n' "$out" | grep -F -- "$want_text" | head -n 1)"
	else
		fail "vm-$name" "exit $rc (wanted $want_rc and '$want_text'): $(printf '%s\n' "$out" | tail -n 15)"
		return 1
	fi
}
pass_text="vm-test: PASS: the Rust ptm passed"
# The acceptance test runs whole in vm-pass and ci-pass; elsewhere the
# harness's handling of its result is the point, and two checks do.
quick='^(open-clone-device|data-raw)$'
mock pass MOCK_ACCEPTANCE_ONLY= --
mock live -- --method live
mock acceptance-fails MOCK_ACCEPTANCE_FAIL="Rust ptm" --
mock baseline-fails MOCK_ACCEPTANCE_FAIL="in-tree C ptm" --
mock load-failure PTM_KMOD="$tmp/broken-kmod" --
mock load-failure-live PTM_KMOD="$tmp/broken-kmod" -- --method live
mock wrong-module MOCK_LOAD_PATH=/usr/kernel/drv/amd64/ptm --
mock ssh-drop MOCK_SSH_DROP=2 --
mock ssh-lost MOCK_SSH_DROP=100000 VM_BOOT_TIMEOUT=8 --
mock cloud-init-wait MOCK_CLOUDINIT_PROBES=3 --
mock no-cloud-init MOCK_NO_CLOUDINIT=1 --
mock ssh-255-retried MOCK_SSH_255=verify:2 --
mock ssh-255-lost MOCK_SSH_255=verify:100 VM_SSH_RETRIES=2 --
mock unload-busy MOCK_BUSY=1 --
mock rollback-fails MOCK_FAIL=bootadm:2 --
mock new-warning 'MOCK_BOOT2_CONSOLE=WARNING: ptm: a mock failure\r\n' --
mock panic-console 'MOCK_BOOT2_CONSOLE=panic[cpu0]/thread=fffffe0001: mock\r\n' --
mock panic-messages \
	'MOCK_BOOT2_MESSAGES=Jan  1 00:00:02 mock savecore: [ID 570001 auth.error] reboot after panic: mock' --
mock panic-word \
	'MOCK_BOOT2_MESSAGES=Jan  1 00:00:02 mock root: [ID 1 daemon.notice] no kernel_panic here, Panic over' --
mock warning-allowed \
	'MOCK_BOOT2_MESSAGES=Jan  1 00:00:02 mock ptm: [ID 1 kern.warning] WARNING: ptm: mock noise (42)' \
	'VM_WARN_ALLOW=ptm: mock noise \([0-9]+\)' --

result pass 0 "$pass_text" &&
	also vm-pass-steps "rebooting into the Rust ptm" "verify: OK: the loaded ptm is the rust module" \
		"add_drv ptm: registered again" "verify: OK: the loaded ptm is the in-tree module" \
		"!kernel evidence"
result live 0 "$pass_text"
result acceptance-fails 1 "the acceptance test fails against the Rust ptm"
result baseline-fails 1 "the acceptance test fails against the in-tree ptm"
result load-failure 5 "the Rust module does not load" &&
	also vm-load-failure-evidence "kernel message buffer (mdb -k -e ::msgbuf" \
		"WARNING: mod_load: cannot load module 'ptm'" "tail of /var/adm/messages" \
		"end of the console log" "!switching" "!not the Rust module"
result load-failure-live 5 "the Rust module does not load"
result wrong-module 6 "the loaded ptm is not the Rust module"
result ssh-drop 0 "$pass_text" &&
	also vm-ssh-drop-seen "ssh exited 255 after"
result ssh-lost 4 "no steady ssh after 8s"
result cloud-init-wait 0 "$pass_text" &&
	also vm-cloud-init-waited "waiting for cloud-init's final stage (svc:/system/cloud-init:final is offline)"
result no-cloud-init 0 "$pass_text" &&
	also vm-no-cloud-init-noted "not waiting for cloud-init"
result ssh-255-retried 0 "$pass_text" &&
	also vm-ssh-255-retry-seen "ssh exited 255 (connection refused or reset"
result ssh-255-lost 4 "lost ssh to the guest"
result unload-busy 7 "ptm could not be unloaded"
result rollback-fails 8 "the rollback to the in-tree ptm failed"
result new-warning 10 "new WARNING lines on the console after the switch"
result panic-console 9 "the guest panicked while booting"
result panic-messages 9 "a kernel panic in /var/adm/messages"
result panic-word 0 "$pass_text"
result warning-allowed 0 "$pass_text"
wait

# 11. ci-omnios.sh in the mock guest: prepare, the action's reboot, run,
#     and the verdict the workflow reads from the copied-back logs.
ci_stage() { # KMOD: a checkout as the action syncs it, in $g/work
	mkdir -p "$g/work/target/kmod" "$g/work/tests/vm" "$g/work/tests/acceptance" "$g/work/packaging"
	cp "$1" "$g/work/target/kmod/ptm"
	cp "$repo/ptm.conf" "$g/work/"
	cp "$here/ci-omnios.sh" "$g/work/tests/vm/"
	cp "$repo/tests/acceptance/pty_acceptance.py" "$g/work/tests/acceptance/"
	cp "$admin" "$g/work/packaging/"
}
ci() { # [ENV=VALUE...] -- ARGS: ci-omnios.sh ARGS in the guest's checkout
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	in_guest CI_CLOUDINIT_TIMEOUT=5 MOCK_ACCEPTANCE_ONLY="$quick" "${envs[@]}" -- bash -c 'cd "$0" && bash tests/vm/ci-omnios.sh "$@"' "$g/work" "$@"
}
verdict() { out=$(cd "$g/work" && bash tests/vm/ci-omnios.sh verdict 2>&1); rc=$?; }

new_guest ci-pass
ci_stage "$tmp/fake-kmod"
ci MOCK_ACCEPTANCE_ONLY= -- prepare
if [ "$rc" = 0 ]; then
	in_guest -- reboot
	ci MOCK_ACCEPTANCE_ONLY= -- run
	expect ci-run 0 "ci-omnios: PASS"
	verdict
	expect ci-verdict-pass 0 "ci-omnios: PASS" '[ -s "$g/work/target/omnios-ci/run.log" ]'
else
	fail ci-run "prepare failed: exit $rc: $(printf '%s\n' "$out" | tail -n 8)"
fi

new_guest ci-no-reboot
ci_stage "$tmp/fake-kmod"
ci -- prepare
ci -- run
expect ci-run-no-reboot 0 "no reboot happened after prepare; switching with --live"

new_guest ci-noload
ci_stage "$tmp/broken-kmod"
ci -- prepare
in_guest -- reboot
ci -- run
if [ "$rc" = 5 ] && [[ $out == *"the Rust module does not load"* ]]; then
	pass ci-run-noload "exit 5: $(printf '%s\n' "$out" | grep -F 'FAIL (5)' | head -n 1)"
else
	fail ci-run-noload "exit $rc (wanted 5): $(printf '%s\n' "$out" | tail -n 8)"
fi
also ci-run-noload-evidence "WARNING: mod_load: cannot load module 'ptm'" "!switching with --live"
verdict
if [ "$rc" = 5 ] && [[ $out == *"FAIL (5): the Rust module does not load"* ]] &&
	grep -q "cannot load module 'ptm'" "$g/work/target/omnios-ci/evidence.txt"; then
	pass ci-verdict-noload "exit 5: $out; evidence.txt has the kernel's WARNING"
else
	fail ci-verdict-noload "exit $rc: $out"
fi
rm -f "$g/work/target/omnios-ci/status"
verdict
if [ "$rc" = 3 ] && [[ $out == *"no verdict"* ]]; then
	pass ci-verdict-missing "exit 3: $out"
else
	fail ci-verdict-missing "exit $rc: $out"
fi

# 12. make package's recipe, in a copy of the build files, with stand-ins
#     for illumos's uname and IPS tools: the system/kernel version that
#     `pkg list -Hv` reports must reach both kernel dependencies of the
#     published manifest, and pkglint must see the expanded manifest.
pt=$tmp/pkgtree
mkdir -p "$pt/target/kmod" "$pt/bin"
cp -r "$repo/Makefile" "$repo/mk" "$repo/packaging" "$repo/ptm.conf" "$repo/Cargo.toml" "$pt/"
echo "fake module" >"$pt/target/kmod/ptm"
printf '#!/bin/sh\necho SunOS\n' >"$pt/bin/uname"
printf '#!/bin/sh\necho "pkg://omnios/system/kernel@0.5.11-151054.0:20240708T101829Z i--"\n' >"$pt/bin/pkg"
cat >"$pt/bin/pkgmogrify" <<'EOF'
#!/bin/sh
# pkgmogrify -D NAME=VALUE... MANIFEST: macro expansion only.
script=""
while [ "$1" = -D ]; do script="$script s|\$(${2%%=*})|${2#*=}|g;"; shift 2; done
sed "$script" "$1"
EOF
for t in pkglint pkgrepo pkgsend; do
	printf '#!/bin/sh\necho "%s $*" >>"%s/ips.log"\n' "$t" "$pt" >"$pt/bin/$t"
done
chmod +x "$pt/bin/"*
pout=$(cd "$pt" && env -u MAKEFLAGS -u MAKELEVEL PATH="$pt/bin:$PATH" make package 2>&1)
prc=$?
res=$pt/target/pkg/ptm-rs.p5m.res
want=pkg:/system/kernel@0.5.11-151054.0:20240708T101829Z
if [ "$prc" = 0 ] && grep -qx "depend type=require fmri=$want" "$res" 2>/dev/null &&
	grep -qx "depend type=incorporate fmri=$want" "$res" &&
	grep -q "^pkglint .*ptm-rs.p5m.res" "$pt/ips.log" && grep -q "^pkgsend publish" "$pt/ips.log" &&
	! grep -q '\$(' <(grep -v '^#' "$res"); then
	pass package-recipe "exit 0; the published manifest depends on $want (require and incorporate)"
else
	fail package-recipe "exit $prc: $(printf '%s\n' "$pout" | tail -n 8)"
fi
pout=$(cd "$pt" && env -u MAKEFLAGS -u MAKELEVEL PATH="$pt/bin:$PATH" PTM_KERNEL_VERSION=0.5.11-151056.0 \
	make package 2>&1)
if grep -qx "depend type=incorporate fmri=pkg:/system/kernel@0.5.11-151056.0" "$res" 2>/dev/null; then
	pass package-recipe-kernel-override "PTM_KERNEL_VERSION=0.5.11-151056.0 reached the manifest"
else
	fail package-recipe-kernel-override "$(printf '%s\n' "$pout" | tail -n 8)"
fi

printf '%d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
[ "$failed" = 0 ]
