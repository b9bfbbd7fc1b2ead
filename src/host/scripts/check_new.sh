#!/bin/sh
# $1 the staged file, $2 the limit of its `-t` (s), $3 `elf` to read its ELF header here, or
# `known` when the controller read it from the very file (its sha256 matched), $4... the
# master's own arguments. Prints `key value` lines: the header's magic, class and machine
# (with `elf`), then `-t`'s exit code and output (only for an ELF), then `end ok`.
new=$1 limit=$2 header=$3; shift 3
say() { printf '%s %s\n' "$1" "$2"; }
# elf BYTES...: the ELF header's first 20 bytes, from one od: magic, class, e_machine
# (little-endian: the machines ngfleet knows are; a big-endian file fails the machine check).
elf() {
  magic='' class='' emachine=''
  if [ "$#" -ge 4 ]; then magic=$1$2$3$4; fi
  if [ "$#" -ge 5 ]; then class=$((0x$5)); fi
  if [ "$#" -ge 20 ]; then emachine=$((0x${20}${19})); fi
}
magic=7f454c46
if [ "$header" = elf ]; then
  # shellcheck disable=SC2046 # the bytes are split into elf's arguments on purpose
  elf $(od -An -tx1 -N20 "$new" 2>/dev/null)
  say magic "$magic"
  say class "$class"
  say emachine "$emachine"
fi
if [ "$magic" = 7f454c46 ]; then
  chmod 700 "$new"
  out=$(timeout "$limit" "$new" -t "$@" 2>&1); rc=$?
  say test_rc "$rc"
  # Each line of the output behind `test_out`, with shell built-ins only, in linear time
  # (cutting the first line off the rest each time was quadratic: seconds for a -t that
  # prints thousands of warnings).
  if [ -n "$out" ]; then
    while IFS= read -r line; do say test_out "$line"; done <<EOF
$out
EOF
  fi
fi
say end ok
