#!/bin/sh
tmp=$1 bin=$2 backup=$3 want=$4; shift 4
chown --reference="$bin" "$tmp" && chmod --reference="$bin" "$tmp" || exit 71
if [ ! -e "$backup" ]; then
  # A copy (across filesystems) goes to a temp name first: a cut copy is never a backup.
  ln -- "$bin" "$backup" 2>/dev/null || { cp -p -- "$bin" "$backup.tmp" && mv -f -- "$backup.tmp" "$backup"; } || exit 72
fi
touch -- "$backup"
for old in "$bin".ngfleet-backup.*; do
  [ -e "$old" ] || continue
  keep=no
  [ "$old" = "$backup" ] && keep=yes
  for k in "$@"; do [ "$old" = "$bin.ngfleet-backup.$k" ] && keep=yes; done
  [ "$keep" = yes ] || rm -f -- "$old"
done
got=$(sha256sum < "$tmp"); [ "${got%% *}" = "$want" ] || { echo "staged file changed: ${got%% *}"; exit 73; }
mv -f -- "$tmp" "$bin" || exit 74
echo installed
