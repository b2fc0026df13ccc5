# SPDX-License-Identifier: MIT
# The Debian package as an operator gets it: make deb, lintian, dpkg -i,
# real programs run with the installed files (LD_PRELOAD=libkashim.so with
# no path, /usr/bin/kashim run, kashim-entrypoint) and read from outside,
# then dpkg --purge and every installed path gone.  The package is purged
# when the test ends, pass or fail; /etc/ld.so.preload is only read.
. "$(dirname "$0")/lib.sh"

PKG=kashim
DEB=""
MA=""
INSTALLED=0

installed() { [ "$(dpkg-query -W -f '${db:Status-Status}' "$PKG" 2> /dev/null)" = installed ]; }

# dpkg_locked CMD...: CMD, retried while another dpkg or apt holds the lock
# (this machine is shared), at most 120 tries a second apart.
dpkg_locked() {
	local i
	for i in $(seq 120); do
		"$@" > "$TMP/dpkg.log" 2>&1 && return 0
		grep -qiE 'lock|locked' "$TMP/dpkg.log" || return 1
		sleep 1
	done
	return 1
}

purge_package() {
	[ "$INSTALLED" = 1 ] || return 0
	dpkg_locked dpkg --purge "$PKG" || cat "$TMP/dpkg.log" >&2
	INSTALLED=0
}

preconditions() {
	need_root || return 1
	need_cmd dpkg-buildpackage dh lintian fakeroot || return 1
	[ "$(uname -s)" = Linux ] || { skip "not Linux"; return 1; }
	case $(dpkg-query -W -f '${db:Status-Status}' "$PKG" 2> /dev/null) in
	"" | not-installed) ;;
	*)
		skip "a $PKG package is already on this machine; not touching it"
		return 1
		;;
	esac
	MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
	# The independent reader the checks use; nothing of the build tree
	# is run otherwise.
	make -s -C "$ROOT" tests/sockpeek > "$TMP/peek" 2>&1 || { fail "make tests/sockpeek: $(cat "$TMP/peek")"; return 1; }
}

build_package() {
	local out
	out=$(make -s -C "$ROOT" deb 2> "$TMP/deb.err")
	DEB=$(printf '%s\n' "$out" | tail -n 1)
	if [ -f "$DEB" ] && [ "$DEB" = "$ROOT/build/deb/${PKG}_$(make -s -C "$ROOT" version)_$(dpkg --print-architecture).deb" ]; then
		ok "make deb names the package it built: $DEB"
	else
		fail "make deb: $out $(tail -n 5 "$TMP/deb.err")"
		return 1
	fi
}

check_lintian() {
	local changes=${DEB%.deb}.changes
	lintian --info "$changes" > "$TMP/lintian" 2>&1
	# The tags, not lintian's notes ("running with root privileges...").
	if grep -qE '^[EW]: ' "$TMP/lintian"; then
		fail "lintian: $(grep -E '^[EW]: ' "$TMP/lintian" | head -n 5 | tr '\n' ';')"
	else
		ok "lintian on the source, the .deb and the .buildinfo: no error, no warning"
	fi
	# Every override says why.
	local o=$ROOT/debian/$PKG.lintian-overrides
	if awk '/^#/ {c=1; next} /^[^#]/ && !c {bad=1} /^$/ {c=0} END {exit bad}' "$o"; then
		ok "every lintian override follows a comment"
	else
		fail "an override without a comment in $o"
	fi
}

# What installing may do: nothing that starts or preloads.
check_nothing_runs_on_install() {
	local ctl=$TMP/control
	dpkg-deb -e "$DEB" "$ctl"
	local scripts
	scripts=$(cd "$ctl" && ls | grep -vxE 'control|md5sums|triggers' | tr '\n' ' ')
	if [ -z "$scripts" ] && [ "$(cat "$ctl/triggers")" = "activate-noawait ldconfig" ]; then
		ok "no maintainer script; the only trigger is ldconfig's"
	else
		fail "maintainer scripts: '$scripts', triggers: $(cat "$ctl/triggers" 2> /dev/null)"
	fi
	# The units: the cgroup mode's template, which only an operator's
	# systemctl enable kashim-attach@CGROUP.service starts, and the audit
	# timer with its service, which only systemctl enable
	# kashim-audit.timer starts (no maintainer script, checked above).
	local listed unit missing=""
	listed=$(dpkg-deb -c "$DEB" | awk '{print $NF}' |
		grep -vxE '\./usr/lib/systemd/(system/(kashim-attach@\.service|kashim-audit\.service|kashim-audit\.timer)?)?')
	for unit in kashim-attach@.service kashim-audit.service kashim-audit.timer; do
		dpkg-deb -c "$DEB" | grep -q "\./usr/lib/systemd/system/$unit\$" || missing="$missing $unit"
	done
	if printf '%s\n' "$listed" | grep -qE '/etc/|systemd/system|/lib/systemd|init\.d|ld\.so\.preload'; then
		fail "files that could start or preload: $(printf '%s\n' "$listed" | grep -E '/etc/|systemd/system|/lib/systemd|init\.d' | head -3)"
	elif [ -n "$missing" ]; then
		fail "the package does not ship$missing"
	elif ! dpkg-deb --fsys-tarfile "$DEB" | tar -xO ./usr/lib/systemd/system/kashim-audit.service |
		grep -qx 'ExecStart=/usr/bin/kashim audit --prometheus --output ${KASHIM_AUDIT_OUTPUT}'; then
		fail "kashim-audit.service does not run /usr/bin/kashim"
	else
		ok "no file in /etc, no init script; three units (kashim-attach@.service, kashim-audit.service and .timer), enabled by nothing"
	fi
}

install_package() {
	local before=absent
	[ -e /etc/ld.so.preload ] && before=$(sha256sum < /etc/ld.so.preload)
	INSTALLED=1
	if ! dpkg_locked dpkg -i "$DEB"; then
		dpkg_locked apt-get install -f -y -qq > /dev/null 2>&1
	fi
	if installed; then
		ok "dpkg -i installs $PKG $(dpkg-query -W -f '${Version}' "$PKG")"
	else
		fail "dpkg -i: $(tail -n 5 "$TMP/dpkg.log")"
		return 1
	fi
	local after=absent
	[ -e /etc/ld.so.preload ] && after=$(sha256sum < /etc/ld.so.preload)
	if [ "$before" = "$after" ]; then ok "/etc/ld.so.preload is as it was"; else fail "/etc/ld.so.preload changed"; fi
	local f missing=""
	for f in /usr/lib/"$MA"/libkashim.so /usr/bin/kashim /usr/bin/kashim-entrypoint \
		/usr/share/man/man1/kashim.1.gz /usr/share/man/man1/kashim-entrypoint.1.gz \
		/usr/share/man/man7/libkashim.7.gz /usr/share/doc/kashim/examples/kashim.conf \
		/usr/share/doc/kashim/examples/example.service /usr/share/doc/kashim/examples/example.socket \
		/usr/share/doc/kashim/examples/kashim.rules.yml /usr/share/kashim/oci-hooks.d/kashim.json; do
		[ -e "$f" ] || missing="$missing $f"
	done
	if [ -z "$missing" ]; then ok "library, commands, man pages, systemd examples, the example alert rules and the OCI hook in place"; else fail "missing:$missing"; fi
	# The hook names the package's own command, and no engine reads it
	# until an operator copies it into a hooks.d directory.
	local hookcmd
	hookcmd=$(python3 -c 'import json,sys; h=json.load(open(sys.argv[1])); print(h["hook"]["path"], " ".join(h["hook"]["args"][1:]), h["stages"])' \
		/usr/share/kashim/oci-hooks.d/kashim.json 2>&1)
	if [ "$hookcmd" = "/usr/bin/kashim attach --oci-hook --config /etc/kashim.conf ['createRuntime']" ] &&
		[ ! -e /etc/containers/oci/hooks.d/kashim.json ] && [ ! -e /usr/share/containers/oci/hooks.d/kashim.json ]; then
		ok "the OCI hook runs /usr/bin/kashim attach --oci-hook at createRuntime, and no engine's hooks.d has it"
	else
		fail "the OCI hook: $hookcmd"
	fi
	# /lib is /usr/lib on a merged-/usr system: either is the package's file.
	if ldconfig -p | grep -qE "libkashim\.so .*=> (/usr)?/lib/$MA/libkashim\.so$"; then
		ok "the ldconfig trigger put libkashim.so in the loader's cache"
	else
		fail "ldconfig -p: $(ldconfig -p | grep kashim)"
	fi
}

# One version everywhere: the Makefile's.
check_versions() {
	local v pv man got bad=""
	v=$(make -s -C "$ROOT" version)
	pv=$(dpkg-query -W -f '${Version}' "$PKG")
	got=$(/usr/bin/kashim --version)
	[ "$got" = "kashim $v" ] || bad="$bad kashim --version says '$got';"
	[ "$pv" = "$v" ] || bad="$bad the package is $pv;"
	[ "$(cd "$ROOT" && dpkg-parsechangelog -S Version)" = "$v" ] || bad="$bad debian/changelog disagrees;"
	for man in /usr/share/man/man1/kashim.1.gz /usr/share/man/man1/kashim-entrypoint.1.gz /usr/share/man/man7/libkashim.7.gz; do
		zcat "$man" | grep -m1 "^\.TH" | grep -qF "\"kashim $v\"" || bad="$bad $(basename "$man"): $(zcat "$man" | grep -m1 "^\.TH");"
	done
	if [ -z "$bad" ]; then ok "the Makefile, kashim --version, the package and the man pages all say $v"; else fail "$bad"; fi
}

# A python3 server preloaded by name only, found where the package put it.
check_preload_by_name() {
	local port
	port=$(free_port)
	bg env LD_PRELOAD=libkashim.so "${KENV[@]}" "$PY" "$HELPERS/hold.py" server 127.0.0.1 "$port"
	local server=$BG
	wait_listen "$port" || { fail "the scene did not get ready: server did not start within 60 s: $(cat "$TMP/bg.$server.log")"; return; }
	if grep -q " /usr/lib/$MA/libkashim.so$" "/proc/$server/maps"; then
		ok "LD_PRELOAD=libkashim.so loads /usr/lib/$MA/libkashim.so"
	else
		fail "not loaded: $(grep kashim "/proc/$server/maps" | head -n 1)"
	fi
	bg "$PY" "$HELPERS/hold.py" client 127.0.0.1 "$port"
	expect_socket "$server" "state=ESTABLISHED local=[^ ]*:$port " "$WANT" \
		"python3 server with LD_PRELOAD=libkashim.so, its accepted connection read from outside"
	[ -s "$TMP/bg.$server.log" ] && fail "the library wrote: $(head -c 200 "$TMP/bg.$server.log")"
}

# /usr/bin/kashim run, with no --library, from a directory without a build.
check_kashim_run() {
	local port
	port=$(free_port)
	bg "$PY" "$HELPERS/hold.py" server 127.0.0.1 "$port"
	local server=$BG
	wait_listen "$port" || { fail "the scene did not get ready: server did not start within 60 s"; return; }
	bg env -u LD_PRELOAD -C / /usr/bin/kashim run --idle 37 --interval 11 --count 4 -- \
		"$PY" "$HELPERS/hold.py" client 127.0.0.1 "$port"
	local client=$BG
	expect_socket "$client" "state=ESTABLISHED .*remote=[^ ]*:$port " "$WANT" \
		"python3 client under /usr/bin/kashim run, read from outside"
	if grep -q " /usr/lib/$MA/libkashim.so$" "/proc/$client/maps"; then
		ok "kashim run preloaded the installed /usr/lib/$MA/libkashim.so"
	else
		fail "kashim run preloaded: $(tr '\0' '\n' < "/proc/$client/environ" | grep LD_PRELOAD)"
	fi
	/usr/bin/kashim dropin --idle 30s > "$TMP/dropin"
	if grep -qx "Environment=LD_PRELOAD=/usr/lib/$MA/libkashim.so" "$TMP/dropin"; then
		ok "kashim dropin names the installed library"
	else
		fail "dropin: $(cat "$TMP/dropin")"
	fi
	if /usr/bin/kashim doctor "$PY" > "$TMP/doctor" 2>&1; then
		ok "kashim doctor: $(cat "$TMP/doctor")"
	else
		fail "kashim doctor: $(cat "$TMP/doctor")"
	fi
	local got
	got=$(env -u LD_PRELOAD -u KASHIM_LIB /usr/bin/kashim-entrypoint printenv LD_PRELOAD)
	if [ "$got" = "/usr/lib/$MA/libkashim.so" ]; then
		ok "kashim-entrypoint preloads the installed library"
	else
		fail "kashim-entrypoint: LD_PRELOAD=$got"
	fi
	if grep -qx "Environment=LD_PRELOAD=/usr/lib/$MA/libkashim.so" /usr/share/doc/kashim/examples/kashim.conf; then
		ok "the example drop-in names the installed library"
	else
		fail "example drop-in: $(grep LD_PRELOAD /usr/share/doc/kashim/examples/kashim.conf)"
	fi
}

# The musl build, shipped out of glibc's path, chosen by kashim run.
check_musl() {
	local mlib=/usr/lib/$MA/kashim/libkashim-musl.so
	if [ ! -e "$mlib" ]; then
		fail "the package has no musl build ($mlib)"
		return
	fi
	if ldconfig -p | grep -q libkashim-musl; then fail "the musl build is in glibc's loader cache"; else ok "the musl build is not in glibc's loader cache"; fi
	need_cmd musl-gcc || return
	make -s -C "$ROOT" tests/probe-musl > "$TMP/musl" 2>&1 || { fail "make tests/probe-musl: $(head -3 "$TMP/musl")"; return; }
	# A musl program that says what it was given to preload.
	printf '#include <stdio.h>\n#include <stdlib.h>\nint main(void) { puts(getenv("LD_PRELOAD")); return 0; }\n' |
		musl-gcc -x c -o "$TMP/preload-musl" - 2> "$TMP/musl"
	local got
	got=$(env -u LD_PRELOAD /usr/bin/kashim run "$TMP/preload-musl" 2>&1)
	if [ "$got" = "$mlib" ]; then ok "kashim run preloads $mlib into a musl program"; else fail "kashim run on a musl program: $got $(cat "$TMP/musl")"; fi
	env -u LD_PRELOAD KASHIM_DEBUG=1 /usr/bin/kashim run --idle 37 --interval 11 --count 4 \
		"$ROOT/tests/probe-musl" tcp 37 11 4 81000 > "$TMP/out" 2> "$TMP/err"
	if [ $? -eq 0 ] && grep -q '^ok' "$TMP/out" && ! grep -q '^not ok' "$TMP/out"; then
		ok "kashim run gives a musl program $mlib ($(grep -c '^ok' "$TMP/out") probe checks)"
	else
		fail "$(head -3 "$TMP/out") $(head -3 "$TMP/err")"
	fi
}

# dpkg --purge: every path dpkg installed is gone, and the loader's cache
# forgets the library.  Directories other packages own stay, as they must.
check_purge() {
	dpkg-query -L "$PKG" > "$TMP/paths"
	purge_package
	local p left=""
	while IFS= read -r p; do
		[ "$p" = /. ] && continue
		[ -e "$p" ] || [ -L "$p" ] || continue
		[ -d "$p" ] && [ ! -L "$p" ] && dpkg-query -S "$p" > /dev/null 2>&1 && continue
		left="$left $p"
	done < "$TMP/paths"
	if [ -z "$left" ] && ! installed; then
		ok "dpkg --purge removes all $(wc -l < "$TMP/paths") paths it installed"
	else
		fail "left after purge:$left"
	fi
	if ls /var/lib/dpkg/info/"$PKG".* > /dev/null 2>&1 || ldconfig -p | grep -q libkashim; then
		fail "left: $(ls /var/lib/dpkg/info/"$PKG".* 2> /dev/null) $(ldconfig -p | grep libkashim)"
	else
		ok "no dpkg record and no loader cache entry left"
	fi
}

# The other way the package is built: dpkg-buildpackage -b -us -uc in a
# checkout (a clone of this one), writing to the checkout's parent.
check_checkout_build() {
	need_cmd git || return
	git clone -q "$ROOT" "$TMP/co/kashim" > "$TMP/clone" 2>&1 || { fail "git clone: $(cat "$TMP/clone")"; return; }
	(cd "$TMP/co/kashim" && env -u MAKEFLAGS -u MAKELEVEL dpkg-buildpackage -b -us -uc) > "$TMP/co.log" 2>&1
	local built=$TMP/co/${DEB##*/}
	if [ -f "$built" ] && [ "$(dpkg-deb -c "$built" | awk '{print $6}')" = "$(dpkg-deb -c "$DEB" | awk '{print $6}')" ]; then
		ok "dpkg-buildpackage -b -us -uc in a checkout builds the same files"
	else
		fail "dpkg-buildpackage -b in a checkout: $(tail -n 3 "$TMP/co.log") $(ls "$TMP/co")"
	fi
}

# The version's one home is the Makefile: a changelog that disagrees stops
# the package build, with a message that says so.
test_changelog_must_agree() {
	need_cmd dpkg-parsechangelog || return
	mkdir -p "$TMP/tree"
	cp -r "$ROOT/Makefile" "$ROOT/debian" "$TMP/tree/"
	sed -i '1s/(.*)/(9.9.9)/' "$TMP/tree/debian/changelog"
	(cd "$TMP/tree" && env -u MAKEFLAGS -u MAKELEVEL debian/rules override_dh_auto_configure) > "$TMP/out" 2>&1
	if [ $? -ne 0 ] && grep -q "debian/changelog says 9.9.9, the Makefile's VERSION is $(make -s -C "$ROOT" version)" "$TMP/out"; then
		ok "a changelog version other than the Makefile's stops the build"
	else
		fail "$(cat "$TMP/out")"
	fi
}

test_debian_package() {
	# The installed package is the machine's, not this checkout's: runs
	# from two checkouts at once take turns (dpkg's own lock covers one
	# command, not install-check-purge).
	local lock
	exec {lock}> "$(test -d /run/lock && echo /run/lock || echo /tmp)/kashim-tests-deb.lock"
	if ! flock -w 400 "$lock"; then
		fail "the scene did not get ready: another run held the package's lock for 400 s"
		return
	fi
	preconditions || return
	trap 'purge_package; cleanup' EXIT
	trap 'exit 143' TERM INT
	build_package || return
	check_lintian
	check_checkout_build
	check_nothing_runs_on_install
	install_package || return
	check_versions
	check_preload_by_name
	check_kashim_run
	check_musl
	check_purge
}

run_tests
