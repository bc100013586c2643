#!/usr/bin/env bash
echo "make bench: not yet implemented (issue 5)" >&2; exit 1
