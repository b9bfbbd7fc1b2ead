#!/bin/sh
for f; do rm -f -- "$f"; done; echo cleaned
