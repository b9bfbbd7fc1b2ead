#!/bin/sh
new=$1 limit=$2; shift 2
say() { printf '%s %s\n' "$1" "$2"; }
# elf BYTES...: the ELF header's first 20 bytes, from one od: magic, class, e_machine
# (little-endian: the machines ngfleet knows are; a big-endian file fails the machine check).
elf() {
  magic='' class='' emachine=''
  if [ "$#" -ge 4 ]; then magic=$1$2$3$4; fi
  if [ "$#" -ge 5 ]; then class=$((0x$5)); fi
  if [ "$#" -ge 20 ]; then emachine=$((0x${20}${19})); fi
}
# shellcheck disable=SC2046 # the bytes are split into elf's arguments on purpose
elf $(od -An -tx1 -N20 "$new" 2>/dev/null)
say magic "$magic"
say class "$class"
say emachine "$emachine"
say hostmachine "$(uname -m)"
if [ "$magic" = 7f454c46 ]; then
  chmod 700 "$new"
  out=$(timeout "$limit" "$new" -t "$@" 2>&1); rc=$?
  say test_rc "$rc"
  printf '%s\n' "$out" | sed 's/^/test_out /'
fi
say end ok
