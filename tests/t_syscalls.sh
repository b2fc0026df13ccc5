# SPDX-License-Identifier: MIT
# The system calls kashim adds, counted with strace: a count does not drift
# the way timings do on a shared machine.
. "$(dirname "$0")/lib.sh"

# count_calls SCRIPT: run python3 SCRIPT under kashim and strace; print the
# number of getsockopt and setsockopt calls made on the fds SCRIPT names
# (it prints "fd N" lines), as "get=G set=S".
traced() {
	strace -f -qq -o "$TMP/trace" -e trace=getsockopt,setsockopt \
		env LD_PRELOAD="$LIB" "$PY" -c "$1" > "$TMP/fds"
}

calls_on() {
	local fd=$1 kind=$2
	# kashim reads only SO_KEEPALIVE and TCP_KEEPIDLE; the program's own
	# getsockopt calls (python reads SO_TYPE for socket(fileno=)) do not count.
	grep -E "^[0-9]+ +$kind\($fd," "$TMP/trace" |
		grep -cE "$kind\($fd, (SOL_SOCKET, SO_KEEPALIVE|SOL_TCP, TCP_)"
}

test_tcp_socket_costs_one_call_per_option() {
	need_cmd strace || return
	traced 'import socket
s = socket.socket()
print(s.fileno())'
	local fd set get
	fd=$(cat "$TMP/fds")
	set=$(calls_on "$fd" setsockopt) get=$(calls_on "$fd" getsockopt)
	if [ "$set" -eq 5 ] && [ "$get" -eq 0 ]; then
		ok "socket(): 5 setsockopt, no getsockopt"
	else
		fail "socket(): $set setsockopt, $get getsockopt"
	fi
}

test_connect_costs_nothing_accept_one_look() {
	need_cmd strace || return
	traced 'import socket
l = socket.create_server(("127.0.0.1", 0))
c = socket.create_connection(l.getsockname())
a, _ = l.accept()
print(c.fileno(), a.fileno())'
	local c a
	read -r c a < "$TMP/fds"
	if [ "$(calls_on "$c" getsockopt)" -eq 0 ] && [ "$(calls_on "$a" getsockopt)" -eq 1 ] &&
		[ "$(calls_on "$c" setsockopt)" -eq 5 ] && [ "$(calls_on "$a" setsockopt)" -eq 0 ]; then
		ok "connect() on kashim's socket: no added call; accept(): 1 getsockopt, options inherited"
	else
		fail "connect fd $c / accept fd $a: $(grep -E "\(($c|$a)," "$TMP/trace" | tr '\n' ';')"
	fi
}

test_foreign_sockets_cost_a_look() {
	need_cmd strace || return
	# A listener and a client socket made without libc's socket() (as a
	# parent or another library would hand them over).
	traced 'import socket, ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
nr = {"x86_64": 41, "aarch64": 198, "riscv64": 198, "ppc64le": 326, "s390x": 359,
      "i686": 359}[os.uname().machine]  # socket(2)
raw = lambda: libc.syscall(nr, socket.AF_INET, socket.SOCK_STREAM, 0)
l = socket.socket(fileno=raw()); l.bind(("127.0.0.1", 0)); l.listen()
c = socket.socket(fileno=raw()); c.connect(l.getsockname())
a, _ = l.accept()
print(c.fileno(), a.fileno())'
	local c a
	read -r c a < "$TMP/fds"
	# SO_KEEPALIVE, then a TCP-level read to be sure it is TCP, then the five options.
	if [ "$(calls_on "$c" getsockopt)" -eq 2 ] && [ "$(calls_on "$c" setsockopt)" -eq 5 ] &&
		[ "$(calls_on "$a" getsockopt)" -eq 2 ] && [ "$(calls_on "$a" setsockopt)" -eq 5 ]; then
		ok "a socket from elsewhere: 2 getsockopt and 5 setsockopt at connect() or accept()"
	else
		fail "connect fd $c / accept fd $a: $(grep -E "\(($c|$a)," "$TMP/trace" | tr '\n' ';')"
	fi
}

# A socket seen at socket() not to be TCP is marked, and its connect() or
# accept() asks the kernel once whether the mark still describes the
# socket under that number (it may have changed hands by close(), dup2(),
# SCM_RIGHTS or a raw system call, which no wrapper sees: issue 21):
# exactly one getsockopt(SOL_TCP, TCP_KEEPIDLE), which the kernel refuses,
# and nothing at socket().  (2629af2 read the program's address, then made
# 2 getsockopt; before issue 21 the mark was trusted and nothing was asked,
# so a TCP socket on such a number was never configured.)
test_unix_and_udp_cost_one_look() {
	need_cmd strace || return
	traced "import socket, os
p = '$TMP/sock'
l = socket.socket(socket.AF_UNIX); l.bind(p); l.listen()
c = socket.socket(socket.AF_UNIX)
print(l.fileno(), c.fileno(), flush=True)
c.connect(p)
a, _ = l.accept()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
print(a.fileno(), u.fileno())
u.connect(('127.0.0.1', 9))"
	local l c a u fd want got
	{ read -r l c && read -r a u; } < "$TMP/fds"
	for fd in "$l:0:the AF_UNIX listener" "$c:1:the AF_UNIX connect()" \
		"$a:1:the AF_UNIX accept()" "$u:1:the UDP connect()"; do
		want=${fd#*:} want=${want%%:*}
		got="$(calls_on "${fd%%:*}" getsockopt) $(calls_on "${fd%%:*}" setsockopt)"
		if [ "$got" = "$want 0" ] &&
			[ "$(grep -cE "getsockopt\(${fd%%:*}, SOL_TCP, TCP_KEEPIDLE," "$TMP/trace")" -eq "$want" ]; then
			ok "${fd##*:}: $want getsockopt (TCP_KEEPIDLE, refused), no setsockopt"
		else
			fail "${fd##*:}: want $want getsockopt and 0 setsockopt, got $got: $(grep -E "\(${fd%%:*}," "$TMP/trace" | tr '\n' ';')"
		fi
	done
}

# sendto() and sendmsg() are wrapped for Fast Open; every other send (UDP,
# an established TCP connection) is passed on with no call added.
test_sends_cost_nothing() {
	need_cmd strace || return
	traced "import socket
l = socket.create_server(('127.0.0.1', 0))
c = socket.create_connection(l.getsockname())
a, _ = l.accept()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
print(c.fileno(), u.fileno())
for i in range(100):
    c.sendmsg([b'x'])
    c.send(b'x')
    u.sendto(b'x', ('127.0.0.1', 9))
    u.sendmsg([b'x'], [], 0, ('127.0.0.1', 9))"
	local c u
	read -r c u < "$TMP/fds"
	if [ "$(calls_on "$c" getsockopt)" -eq 0 ] && [ "$(calls_on "$c" setsockopt)" -eq 5 ] &&
		[ "$(calls_on "$u" getsockopt)" -eq 0 ] && [ "$(calls_on "$u" setsockopt)" -eq 0 ]; then
		ok "200 sends on a TCP connection and 200 UDP sendto/sendmsg: no added call"
	else
		fail "tcp fd $c / udp fd $u: $(grep -E "\(($c|$u)," "$TMP/trace" | tr '\n' ';')"
	fi
}

# close(), dup2(), dup3() and close_range() are wrapped to clear a number's
# marks (issue 21): bit clears only, no system call added.  Between two
# getppid() markers, the program's own calls and nothing else.
test_closes_cost_nothing() {
	need_cmd strace || return
	strace -f -qq -o "$TMP/trace" env LD_PRELOAD="$LIB" "$PY" -c "import os, socket
tcp = [socket.socket() for i in range(20)]
udp = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for i in range(20)]
pipes = [os.pipe() for i in range(10)]
last = max(s.fileno() for s in tcp + udp)
os.getppid()
for s in tcp[:10] + udp[:10]:
    os.close(s.detach())
for r, w in pipes:
    os.dup2(r, tcp[10].detach())
    os.dup2(w, udp[10].detach())
    tcp.pop(10); udp.pop(10)
os.closerange(last + 1, last + 1000)
os.getppid()"
	local calls
	calls=$(awk '/getppid\(/ { n++; next } n == 1 { sub(/^[0-9]+ +/, ""); sub(/\(.*/, ""); print }' "$TMP/trace" |
		sort | uniq -c | awk '{ printf "%s=%s ", $2, $1 }')
	if [ "$calls" = "close=20 close_range=1 dup2=20 " ]; then
		ok "20 close(), 20 dup2() onto marked numbers, 1 close_range(): no added call ($calls)"
	else
		fail "between the markers: $calls(want close=20 close_range=1 dup2=20)"
	fi
}

run_tests
