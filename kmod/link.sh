#!/bin/sh
# kmod/link.sh ARCHIVE OUTPUT
#
# The one link step of a kernel module: turns the Rust staticlib ARCHIVE
# (built for x86_64-illumos-kernel.json) into the single ET_REL object
# OUTPUT that krtld loads. `make kmod`, `make gate-demo` and the tests that
# build a module all call it.
#
#  1. ld -r: one relocatable object; --gc-sections keeps only what the
#     entry points _init, _fini and _info reach, and kmod-merge.ld merges
#     the sections and pins each at address 0 (--orphan-handling=warn
#     shows any section the script does not name). The result is kept
#     beside OUTPUT as OUTPUT.o.
#  2. objcopy: removes the LOCAL undefined symbols ld -r leaves behind for
#     externs used only by discarded code (krtld refuses any) and the
#     .comment section, and makes every definition but the entry points
#     local, as the C driver's are static (they keep their names for DTrace
#     and mdb).
#
# GNU binutils are required: LD, OBJCOPY and READELF name them when they
# are not ld, objcopy and readelf on PATH (gld, gobjcopy, greadelf on
# illumos; the Makefile passes its own).
set -eu

if [ "$#" -ne 2 ]; then
	echo "usage: $0 ARCHIVE OUTPUT" >&2
	exit 2
fi
archive=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
: "${LD:=ld}" "${OBJCOPY:=objcopy}" "${READELF:=readelf}"
merged=$out.o

"$LD" -r --gc-sections --orphan-handling=warn -u _init -u _fini -u _info \
	-T "$here/kmod-merge.ld" --whole-archive "$archive" --no-whole-archive -o "$merged"

set --
for name in $("$READELF" -sW "$merged" |
	awk '$5 == "LOCAL" && $7 == "UND" && $8 != "" { print $8 }'); do
	set -- "$@" -N "$name"
done
"$OBJCOPY" "$@" -G _init -G _fini -G _info --remove-section=.comment "$merged" "$out"
