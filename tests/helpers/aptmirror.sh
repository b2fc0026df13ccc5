#!/bin/sh
# SPDX-License-Identifier: MIT
# aptmirror.sh: the Debian archive this machine's apt reads from, for a
# debootstrap of the tests' own roots (the fleet's hosts, the container
# images).  The first URI of a "deb" source whose suite is bookworm or
# one of its siblings, and not the security archive: deb822 files
# (sources.list.d/*.sources) first, then the one-line form.  Prints
# nothing and fails when there is none, so the caller can say so.
set -u
for f in /etc/apt/sources.list.d/*.sources; do
	[ -r "$f" ] || continue
	awk '
		/^[ \t]*$/ { if (types ~ /(^| )deb( |$)/ && uri != "" && uri !~ /security/) { print uri; exit 0 } types = uri = ""; next }
		/^Types:/ { types = $0; sub(/^Types:[ \t]*/, "", types) }
		/^URIs:/ { uri = $2 }
		END { if (types ~ /(^| )deb( |$)/ && uri != "" && uri !~ /security/) print uri }
	' "$f"
done | head -n 1 | grep . && exit 0
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
	[ -r "$f" ] || continue
	sed -n 's/^[ \t]*deb[ \t]\{1,\}\(\[[^]]*\][ \t]\{1,\}\)\{0,1\}\([^ \t]*\).*/\2/p' "$f"
done | grep -v security | head -n 1 | grep .
