#!/bin/sh
[ -e "$1" ] || { echo 'state absent'; exit 0; }
flock -n -E 75 "$1" true 2>/dev/null; rc=$?
case $rc in 0) echo 'state free' ;; 75) echo 'state held' ;; *) echo "state error $rc" ;; esac
printf 'owner %s\n' "$(head -c 300 "$1" | tr '\n' ' ')"
