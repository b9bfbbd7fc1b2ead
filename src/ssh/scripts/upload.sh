#!/bin/sh
# Writes stdin to a fresh $1 (never through an existing file or symlink: removed first, then
# created with noclobber, which opens a missing file with O_EXCL), private (umask 077), then
# prints its sha256. `rm` runs only when something is there (a fresh name: nothing is).
# With $2 (the sha256 the file must have) and more arguments, the shell function `after`
# (put in front) then runs with $3..., in the same command, when the file has that sha256.
umask 077 || exit
if [ -e "$1" ] || [ -L "$1" ]; then rm -f -- "$1" || exit; fi
set -C && cat > "$1" && sum=$(sha256sum < "$1") || exit
set +C
printf '%s\n' "$sum"
if [ "$#" -gt 2 ] && [ "${sum%% *}" = "$2" ]; then shift 2; after "$@"; fi
