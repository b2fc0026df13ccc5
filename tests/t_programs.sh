# SPDX-License-Identifier: MIT
# Layer 3: real, unmodified programs from Debian packages, one side under
# kashim and the other without it; the kernel state of their sockets is read
# from outside the processes (pidfd_getfd + getsockopt).
. "$(dirname "$0")/lib.sh"

# How each program holds an idle connection open as server or client.
cmd_python() { echo "$PY $HELPERS/hold.py $1 $2 $3"; }
cmd_java() { echo "java $HELPERS/Hold.java $1 $2 $3"; }
cmd_node() { echo "node $HELPERS/hold.js $1 $2 $3"; }
cmd_nc() {
	if [ "$1" = server ]; then echo "nc -d -l $2 $3"; else echo "nc -d $2 $3"; fi
}
cmd_socat() {
	local v=TCP4 h=$2
	[[ $h == *:* ]] && v=TCP6 h="[$h]"
	if [ "$1" = server ]; then
		echo "socat -u $v-LISTEN:$3,bind=$h,reuseaddr OPEN:/dev/null"
	else
		echo "socat -u $v:$h:$3 OPEN:/dev/null"
	fi
}

# pair PROGRAM HOST SIDE: PROGRAM's server and client talk over HOST; the
# SIDE (server or client) runs under kashim, the other does not.
pair() {
	local prog=$1 host=$2 side=$3 port server client
	local s_pre=() c_pre=()
	port=$(free_port)
	if [ "$side" = server ]; then s_pre=("${SHIM[@]}"); else c_pre=("${SHIM[@]}"); fi
	# shellcheck disable=SC2046
	bg "${s_pre[@]}" $(cmd_"$prog" server "$host" "$port")
	server=$BG
	if ! wait_listen "$port"; then
		fail "the scene did not get ready: $prog server on $host:$port did not listen within 60 s"
		return
	fi
	# Before a client connects: socat and nc close their listener after one.
	[ "$side" = server ] &&
		expect_socket "$server" "state=LISTEN .*:$port " "$WANT" "$prog listener on $host"
	# shellcheck disable=SC2046
	bg "${c_pre[@]}" $(cmd_"$prog" client "$host" "$port")
	client=$BG
	if [ "$side" = server ]; then
		expect_socket "$server" "state=ESTABLISHED local=[^ ]*:$port " "$WANT" \
			"$prog accepted connection on $host"
		expect_socket "$client" "state=ESTABLISHED .*remote=[^ ]*:$port " "keepalive=0" \
			"the $prog client without kashim"
	else
		expect_socket "$client" "state=ESTABLISHED .*remote=[^ ]*:$port " "$WANT" \
			"$prog client connection to $host"
		expect_socket "$server" "state=ESTABLISHED local=[^ ]*:$port " "keepalive=0" \
			"the $prog server without kashim"
	fi
}

test_python_server_ipv4() { pair python 127.0.0.1 server; }
test_python_server_ipv6() { pair python ::1 server; }
test_python_client_ipv4() { pair python 127.0.0.1 client; }
test_python_client_ipv6() { pair python ::1 client; }
test_nc_server() { need_cmd nc && pair nc 127.0.0.1 server; }
test_nc_client() { need_cmd nc && pair nc ::1 client; }
test_socat_server() { need_cmd socat && pair socat ::1 server; }
test_socat_client() { need_cmd socat && pair socat 127.0.0.1 client; }
test_java_server() { need_cmd java && pair java 127.0.0.1 server; }
test_java_client() { need_cmd java && pair java ::1 client; }
test_node_server() { need_cmd node && pair node ::1 server; }
test_node_client() { need_cmd node && pair node 127.0.0.1 client; }

# curl sets its own keepalive (60 s idle and interval by default): its
# explicit choice must stand, with kashim's user timeout and count added.
# With --no-keepalive curl sets nothing, and kashim's values apply.
curl_case() {
	local want=$1 what=$2 port
	shift 2
	port=$(free_port)
	bg "$PY" "$HELPERS/hold.py" server 127.0.0.1 "$port"
	wait_listen "$port" || { fail "the scene did not get ready: server did not start within 60 s"; return; }
	bg "${SHIM[@]}" curl -s -o /dev/null -m 60 "$@" "http://127.0.0.1:$port/"
	expect_socket "$BG" "state=ESTABLISHED .*remote=[^ ]*:$port " "$want" "$what"
}

test_curl_own_keepalive_wins() {
	need_cmd curl || return
	curl_case "keepalive=1 idle=60 interval=60 count=4 user_timeout=81000" \
		"curl's own 60 s keepalive stands, kashim adds count and user timeout"
	curl_case "keepalive=1 idle=5 interval=5 count=4 user_timeout=81000" \
		"curl --keepalive-time 5 stands" --keepalive-time 5
}

test_curl_no_keepalive() {
	need_cmd curl || return
	curl_case "$WANT" "curl --no-keepalive gets kashim's values" --no-keepalive
}

# workers_accepted MASTER PORT: the connections on PORT nginx's workers hold.
workers_accepted() {
	local worker
	for worker in $(children "$1"); do
		peek "$worker" | grep -E "state=ESTABLISHED local=[^ ]*:$2 "
	done
}
workers_hold() { [ "$(workers_accepted "$2" "$3" | grep -c .)" -ge "$1" ]; }

# nginx: the master creates the listener, the workers accept4() from it.
test_nginx_workers() {
	need_cmd nginx || return
	local port found=""
	port=$(free_port)
	mkdir -p "$TMP/nginx/logs"
	cat > "$TMP/nginx/nginx.conf" <<-CONF
		worker_processes 2;
		daemon off;
		error_log stderr;
		pid $TMP/nginx/nginx.pid;
		events { worker_connections 64; }
		http {
		    access_log off;
		    client_body_temp_path $TMP/nginx/body;
		    proxy_temp_path $TMP/nginx/proxy;
		    fastcgi_temp_path $TMP/nginx/fastcgi;
		    uwsgi_temp_path $TMP/nginx/uwsgi;
		    scgi_temp_path $TMP/nginx/scgi;
		    server {
		        listen 127.0.0.1:$port;
		        listen [::1]:$port;
		        location / { return 200 "hello\n"; }
		    }
		}
	CONF
	bg "${SHIM[@]}" nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf"
	local master=$BG
	wait_listen "$port" || { fail "the scene did not get ready: nginx did not start within 60 s: $(cat "$TMP/nginx/logs/"* 2>/dev/null)"; return; }
	expect_socket "$master" "family=inet proto=tcp state=LISTEN .*:$port " "$WANT" "nginx master's IPv4 listener"
	expect_socket "$master" "family=inet6 proto=tcp state=LISTEN .*:$port " "$WANT" "nginx master's IPv6 listener"
	# A client that connects and says nothing: some worker accept4()s it.
	bg "$PY" "$HELPERS/hold.py" client 127.0.0.1 "$port"
	bg "$PY" "$HELPERS/hold.py" client ::1 "$port"
	wait_for 60 workers_hold 2 "$master" "$port"
	found=$(workers_accepted "$master" "$port")
	if [ "$(grep -c . <<< "$found")" -ne 2 ]; then
		fail "the scene did not get ready: 2 accepted connections in the workers within 60 s, found: $found"
	elif [ "$(grep -c -F "$WANT" <<< "$found")" -ne 2 ]; then
		fail "a worker's accepted connection lacks the settings: $found"
	else
		ok "both connections accepted by nginx workers carry $WANT"
	fi
	if curl -s -m 5 "http://127.0.0.1:$port/" | grep -q hello; then
		ok "nginx still serves requests"
	else
		fail "nginx does not answer under kashim"
	fi
}

# Non-TCP sockets of a real program are left exactly as the kernel made them.
test_python_non_tcp_untouched() {
	bg "${SHIM[@]}" "$PY" -c '
import socket, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
x = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
time.sleep(30)'
	expect_socket "$BG" "family=inet type=2 " "keepalive=0" "UDP socket"
	expect_socket "$BG" "family=unix type=1 " "keepalive=0" "AF_UNIX stream socket"
	expect_socket "$BG" "family=inet proto=tcp" "$WANT" "and the TCP socket beside them"
}

run_tests
