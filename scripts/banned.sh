#!/bin/sh
# Fail when a source file calls a function the house style bans (as git's
# banned.h does): unbounded string writes, non-reentrant time and token
# functions, and atoi, which cannot report an error.
# Use snprintf, strtok_r, gmtime_r, localtime_r and strtol instead.
bad=$(grep -nE '(^|[^_a-zA-Z0-9.>])(strcpy|strcat|sprintf|vsprintf|strtok|gmtime|localtime|atoi)[[:space:]]*\(' "$@" |
	grep -vE '^[^:]+:[0-9]+:[[:space:]]*(\*|/\*)')
if [ -n "$bad" ]; then
	echo "banned function used:" >&2
	echo "$bad" >&2
	exit 1
fi
