#!/bin/sh
for f; do [ -f "$f" ] && { tail -n 8 -- "$f"; exit 0; }; done; exit 0
