#!/bin/sh
# shellcheck disable=SC2086 # the fields of /proc/PID/stat are split on purpose
# pidin, kids and title (which set p, k and t) come from scripts/procfs.sh, put in front.
# shellcheck disable=SC2154
pidfile=$1
binary=$2
mode=${3:-full}
# full: everything; sums: no `-v` runs; step (the probe that ends a step command): sums less
# what only preflight reads (the binary's size, free space); quick: no checksums, no orphans.
case $mode in full | sums) facts=yes ;; *) facts= ;; esac
say() { printf '%s %s\n' "$1" "$2"; }
# held (scripts/procfs.sh), if set, is the sha256 of the file open on fd 4: the install or
# the `runs` check of the step before hashed it (scripts/act.sh), and it is not hashed again.
proc() {
  tag=$1; pid=$2
  if ! read -r stat 2>/dev/null < "/proc/$pid/stat"; then say "$tag.state" gone; return; fi
  rest=${stat##*) }
  set -- $rest
  say "$tag.state" "$1"
  say "$tag.ppid" "$2"
  # nginx's title (one line, no NUL but the last) is read by the shell and sent as text;
  # anything else goes as hex of the NUL-separated argv, so arguments with spaces survive.
  # `read` fails at the end of the file: a title with a newline (read succeeds) goes as hex.
  t=
  if ! IFS= read -r t 2>/dev/null < "/proc/$pid/cmdline" && [ "${t#nginx: }" != "$t" ]; then
    say "$tag.title" "$t"
  else
    # The bytes od prints, joined with no separator (no `tr`).
    # shellcheck disable=SC2046 # split into bytes on purpose
    set -- $(od -An -tx1 -v "/proc/$pid/cmdline" 2>/dev/null)
    ifs=$IFS; IFS=; say "$tag.cmdline" "$*"; IFS=$ifs
  fi
  # A master that runs the binary's file (the same inode) was started from that path (or
  # another link to the same inode): its path is the file's, with no readlink.
  # shellcheck disable=SC3013 # -ef: dash, bash, busybox and ksh all have it
  if [ -e "$file" ] && [ "/proc/$pid/exe" -ef "$file" ]; then
    say "$tag.exe" "$file"
  else
    say "$tag.exe" "$(readlink "/proc/$pid/exe" 2>/dev/null)"
  fi
  if [ "$mode" != quick ]; then
    # A master that runs the binary's own file (the same inode, held open on fd 3 since it
    # was hashed), or the file the step hashed (fd 4), has its checksum already: the file
    # cannot be written while it runs, so its content is the content hashed.
    # shellcheck disable=SC3013
    if [ -n "$binsum" ] && [ "/proc/$pid/exe" -ef "/proc/$$/fd/3" ]; then
      sum=$binsum
    elif [ -n "$held" ] && [ "/proc/$pid/exe" -ef "/proc/$$/fd/4" ]; then
      sum=$held
    else
      sum=$(sha256sum < "/proc/$pid/exe" 2>/dev/null)
    fi && say "$tag.sha256" "${sum%% *}"
  fi
  if [ "$mode" = full ]; then
    say "$tag.version" "$(timeout 5 "/proc/$pid/exe" -v 2>&1 | head -n 1)"
  fi
  kids "$pid"
  for c in $k; do
    read -r cstat 2>/dev/null < "/proc/$c/stat" || continue
    crest=${cstat##*) }; set -- $crest
    title "$c"
    say "$tag.child" "$c $1 $t"
  done
}
say probe 1
# A symlinked binary: the file it points to is what runs and what is replaced. It is hashed
# first, through fd 3, which stays open so that a master can be compared with that very inode.
file=$binary linked=
if [ -L "$binary" ]; then file=$(readlink -f -- "$binary") && linked=yes; fi
binsum=
# shellcheck disable=SC3013
if [ "$mode" = quick ] || [ ! -f "$file" ]; then :
elif [ -n "$held" ] && [ "$file" -ef "/proc/$$/fd/4" ] && command exec 3<&4; then
  binsum=$held
elif command exec 3< "$file" 2>/dev/null; then
  binsum=$(sha256sum <&3) || binsum=
fi
say depth "$mode"
# Linux 6.1 and later say it in /proc (no fork), but only uname sees a personality (an i686
# container on an x86_64 kernel, linux32): /proc only when this shell has none.
arch='' pers=''
{ read -r pers < /proc/self/personality; } 2>/dev/null || :
if [ "$pers" = 00000000 ]; then { read -r arch < /proc/sys/kernel/arch; } 2>/dev/null || :; fi
[ -n "$arch" ] || arch=$(uname -m)
say machine "$arch"
if pidin "$pidfile"; then
  pid=$p
  say pidfile "$pid"; proc master "$pid"
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    # The unit is on the cgroup v2 line (0::), or, under the legacy v1 hierarchy (where 0:: is
    # absent or just "/"), on systemd's own name=systemd line.
    unit=$(sed -n -e 's#^0::.*/\([^/]*\.service\)$#\1#p' -e 's#^[0-9]*:name=systemd:.*/\([^/]*\.service\)$#\1#p' \
      "/proc/$pid/cgroup" 2>/dev/null | head -n 1)
    if [ -n "$unit" ]; then
      say unit.name "$unit"
      say unit.type "$(systemctl show -p Type --value "$unit" 2>/dev/null)"
      upid=$(systemctl show -p PIDFile --value "$unit" 2>/dev/null)
      say unit.pidfile "$(readlink -f "$upid" 2>/dev/null || printf '%s' "$upid")"
      say unit.ours "$(readlink -f "$pidfile" 2>/dev/null || printf '%s' "$pidfile")"
    fi
  fi
else say pidfile none; fi
if pidin "$pidfile.oldbin"; then old=$p; say oldbin "$old"; proc oldmaster "$old"; else say oldbin none; fi
if [ -n "$linked" ]; then say bin.file "$file"; fi
if [ -f "$file" ]; then
  if [ -n "$binsum" ]; then say bin.sha256 "${binsum%% *}"; fi
  if [ "$mode" = full ]; then
    say bin.version "$(timeout 5 "$file" -v 2>&1 | head -n 1)"
  fi
  if [ -n "$facts" ]; then say bin.size "$(stat -c %s "$file")"; fi
else
  say bin.missing yes
fi
fdir=${file%/*}; fbase=${file##*/}
for f in "$fdir/.$fbase.ngfleet-stage."*; do [ -e "$f" ] && say stage "$f"; done
for f in "$file.ngfleet-backup."*; do [ -f "$f" ] && say backup "$f"; done
dir=${binary%/*}; base=${binary##*/}
# The record, up to 8 KiB, line by line (a small file: the shell's byte-wise read is cheaper
# than a program); a last line without a newline counts too.
if [ -f "$dir/.$base.ngfleet-state" ]; then
  rn=0
  while IFS= read -r line || [ -n "$line" ]; do
    rn=$((rn + ${#line} + 1))
    [ "$rn" -le 8192 ] || break
    say record "$line"
  done < "$dir/.$base.ngfleet-state"
fi
if [ "$mode" != quick ]; then
  # Workers of this binary whose master is gone (a killed new master's) still accept. One
  # `find` compares every process's exe with the file; only the few that run it are read
  # further. (A shell loop reading each /proc/PID/stat costs ~0.3 ms per process, because the
  # shell's `read` takes a byte per system call: 0.4 s of CPU with 1,600 processes.)
  find -L /proc/[0-9]*/exe -maxdepth 0 -samefile "$file" 2>/dev/null | while read -r e; do
    d=${e%/exe}
    read -r line 2>/dev/null < "$d/stat" || continue
    r=${line##*) }; set -- $r
    [ "$2" = 1 ] || continue
    read -r title 2>/dev/null < "$d/cmdline" || true
    case "$title" in "nginx: worker process"*) say orphan "${d#/proc/}";; esac
  done
fi
if [ -n "$facts" ]; then
  df -Pk "$fdir" 2>/dev/null | { read -r _; read -r _ _ _ avail _; say free_kb "$avail"; }
fi
say end ok
