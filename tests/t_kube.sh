#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/run: timeout 1200 (the first run on a machine builds the engine host's root and the images' root with debootstrap, 3-6 min)
# The Kubernetes pod of scripts/k8s, played for real (issue 28, 4): in an
# engine host (tests/helpers/enginehost.sh: systemd, a unified cgroup
# tree, podman with the systemd cgroup driver, as on a node), the image
# is built from scripts/k8s/Containerfile with podman build, and the
# DaemonSet's pod template is played as a Pod with podman kube play
# (Podman 4.3 has no DaemonSet kind).  Only what podman cannot play is
# changed: the kind, the image (the one just built), KASHIM_CGROUP (the
# pods' parent cgroup here, machine.slice) and no resources (the host has
# no cgroup controllers: this machine binds them all to cgroup v1).
#   - the pod attaches kashim to the pods' parent cgroup, with the
#     ConfigMap's settings; another pod's connection gets them (the kernel's
#     view from that pod's network namespace: ss -tnoi, getsockopt);
#   - the pod has exactly the capabilities the manifest lists, and the
#     host's cgroup tree read-only; without CAP_SYS_ADMIN its log shows
#     kashim's refusal and nothing is attached;
#   - deleting the pod detaches (its TERM trap: podman runs no preStop),
#     checked in the kernel (tests/helpers/bpfcg.py) and by kashim status;
#     a new connection then gets no keepalive.
# Not tested: a kubelet, containerd or CRI-O (no cluster on this machine).
. "$(dirname "$0")/lib.sh"
. "$HELPERS/nspawn.sh"
. "$HELPERS/enginehost.sh"

MANIFEST=$ROOT/scripts/k8s/kashim-daemonset.yaml
H=kube$$
IMAGE=localhost/kashim:test

# pod_yaml [DROP]: the manifest's ConfigMap and its DaemonSet's pod
# template as a Pod, as podman plays it (see above); DROP: a capability
# taken out of the container's add list.
pod_yaml() {
	"$PY" - "$MANIFEST" "$IMAGE" "$1" <<-'PY'
	import sys, yaml
	src, image, drop = sys.argv[1:4]
	out = []
	for d in yaml.safe_load_all(open(src)):
	    if d["kind"] == "DaemonSet":
	        t = d["spec"]["template"]
	        c = t["spec"]["containers"][0]
	        c["image"] = image
	        c.pop("resources")
	        for e in c["env"]:
	            if e["name"] == "KASHIM_CGROUP":
	                e["value"] = "/host/cgroup/machine.slice"
	        if drop:
	            c["securityContext"]["capabilities"]["add"].remove(drop)
	        d = {"apiVersion": "v1", "kind": "Pod", "spec": t["spec"],
	             "metadata": {"name": d["metadata"]["name"], "labels": t["metadata"]["labels"]}}
	    out.append(d)
	yaml.safe_dump_all(out, sys.stdout, sort_keys=False)
	PY
}

# A pod that holds a loopback connection, as a legacy server and client
# would (no keepalive of their own).
app_yaml() {
	cat <<-YAML
	apiVersion: v1
	kind: Pod
	metadata:
	  name: $1
	spec:
	  containers:
	    - name: legacy
	      image: localhost/local/bookworm
	      command: ["/usr/bin/python3", "-c"]
	      args:
	        - |
	          import socket, time
	          s = socket.socket(); s.bind(("127.0.0.1", 8080)); s.listen()
	          c = socket.create_connection(("127.0.0.1", 8080)); a, _ = s.accept()
	          print("connected", flush=True)
	          time.sleep(3600)
	YAML
}

pm() { ehost_in "$H" podman "$@"; }

# ctr_pid NAME: the first process of podman container NAME, as this
# machine numbers it (from the container's cgroup in the host's tree).
ctr_pid() {
	local id f
	id=$(pm inspect --format '{{.Id}}' "$1" 2> /dev/null) && [ -n "$id" ] || return 1
	f=$(find "$(ehost_cgroup "$H")/machine.slice" -path "*/libpod-$id.scope/cgroup.procs" 2> /dev/null | head -n 1)
	[ -n "$f" ] && head -n 1 "$f" | grep .
}

# The kernel's view: kashim's program on the pods' parent cgroup.
attached() { "$PY" "$HELPERS/bpfcg.py" progs "$(ehost_cgroup "$H")/machine.slice" 2> /dev/null | grep -q kashim; }
detached() { ! attached; }
logs_have() { pm logs "$1" 2>&1 | grep -qE -- "$2"; }

# A setting of the manifest's ConfigMap, in seconds or as a count.
conf() { sed -n "s/^ *$1 = \([0-9]*\)s\{0,1\}\$/\1/p" "$MANIFEST"; }

# The capabilities the manifest adds, as capsh --decode names them.
manifest_caps() {
	"$PY" - "$MANIFEST" <<-'PY'
	import sys, yaml
	for d in yaml.safe_load_all(open(sys.argv[1])):
	    if d["kind"] == "DaemonSet":
	        caps = d["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"]
	        assert caps["drop"] == ["ALL"]
	        print(",".join(sorted("cap_" + c.lower() for c in caps["add"])))
	PY
}
caps_of() { capsh --decode="$(awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status")" | sed 's/.*=//' | tr ',' '\n' | sort | paste -sd,; }

preconditions() {
	ehost_usable || return 1
	need_cmd capsh nsenter ss || return 1
	if ! "$PY" -c 'import yaml' 2> /dev/null; then
		skip "python3-yaml is not installed (to turn the DaemonSet into a Pod)"
		return 1
	fi
}

build_image() {
	local deb t0
	deb=$(make -s -C "$ROOT" deb 2> "$TMP/deb.err" | tail -n 1)
	[ -f "$deb" ] || { fail "make deb: $(tail -n 5 "$TMP/deb.err" | tr '\n' ';')"; return 1; }
	mkdir -p "$EHOST_X/ctx"
	cp "$deb" "$ROOT/scripts/k8s/Containerfile" "$EHOST_X/ctx/"
	t0=$(date +%s%N)
	if ! pm build --build-arg BASE=localhost/local/bookworm -t "$IMAGE" /x/ctx > "$TMP/build.log" 2>&1; then
		fail "podman build of scripts/k8s/Containerfile: $(tail -n 5 "$TMP/build.log" | tr '\n' ';')"
		return 1
	fi
	ok "scripts/k8s/Containerfile builds with podman build in $((($(date +%s%N) - t0) / 1000000)) ms ($(pm run --rm "$IMAGE" /usr/bin/kashim --version 2>&1) in the image)"
}

# Without CAP_SYS_ADMIN, kashim refuses in the pod's log and nothing is
# attached (the pod restarts and refuses again: restartPolicy Always).
check_drop() {
	pod_yaml SYS_ADMIN > "$EHOST_X/drop.yaml"
	pm kube play /x/drop.yaml > "$TMP/play.log" 2>&1
	if ! wait_for 60 logs_have kashim-kashim 'bpf\(2\) was refused.*nothing attached'; then
		fail "without CAP_SYS_ADMIN the pod's log shows no refusal: $(pm logs kashim-kashim 2>&1 | tail -n 3 | tr '\n' ';')"
	elif attached; then
		fail "without CAP_SYS_ADMIN kashim is attached all the same"
	else
		ok "without CAP_SYS_ADMIN the pod's log says: $(pm logs kashim-kashim 2>&1 | grep -m 1 'bpf(2) was refused'); the kernel shows nothing attached"
	fi
	remove_pod kashim
}

# remove_pod NAME: pod NAME gone, or the test says why not.  Again until
# it is: a pod whose container restarts (restartPolicy Always) can be
# caught between two runs ("container state improper").
pod_gone() { ! pm pod exists "$1" > /dev/null 2>&1; }
rm_pod() { pm pod rm -f -t 0 "$1" > "$TMP/rm.log" 2>&1; pod_gone "$1"; }
remove_pod() {
	wait_for 60 rm_pod "$1" || fail "podman pod rm -f $1 left the pod: $(tail -n 3 "$TMP/rm.log" | tr '\n' ';')"
}

# kashim's pod attaches to machine.slice; $POD is its container's PID.
play_kashim() {
	pm kube play /x/pod.yaml > "$TMP/play.log" 2>&1
	if ! wait_for 60 attached; then
		fail "$1: the pod did not attach kashim to machine.slice: $(tail -n 3 "$TMP/play.log" | tr '\n' ';') $(pm logs kashim-kashim 2>&1 | tail -n 3 | tr '\n' ';')"
		return 1
	fi
	POD=$(ctr_pid kashim-kashim) || { fail "$1: no process of the pod's container"; return 1; }
}

check_pod() {
	local want got mnt
	want=$(manifest_caps)
	got="$(caps_of "$POD" CapEff) $(caps_of "$POD" CapPrm) $(caps_of "$POD" CapBnd)"
	if [ "$got" = "$want $want $want" ]; then
		ok "the pod's capabilities (effective, permitted, bounding) are exactly the manifest's: $want"
	else
		fail "the pod's capabilities (effective, permitted, bounding) are $got, the manifest lists $want"
	fi
	# the mount options, then the type (the field after " - ")
	mnt=$(awk '$5 == "/host/cgroup" { for (i = 7; $i != "-"; i++); print $6, $(i + 1) }' "/proc/$POD/mountinfo")
	case $mnt in
	"ro,"*" cgroup2") ok "the host's cgroup tree is mounted read-only in the pod ($mnt)" ;;
	*) fail "the host's cgroup tree in the pod: '$mnt', not a read-only cgroup2 mount" ;;
	esac
	if logs_have kashim-kashim '^/host/cgroup/machine.slice idle=' &&
		ehost_in "$H" /usr/local/bin/kashim status > "$TMP/status" 2>&1 &&
		grep -q "^/sys/fs/cgroup/machine.slice idle=$(conf idle)s interval=$(conf interval)s count=$(conf count) " "$TMP/status"; then
		ok "the pod attached kashim to the pods' parent cgroup with the ConfigMap's settings: $(head -n 1 "$TMP/status")"
	else
		fail "kashim status in the host: $(tr '\n' ';' < "$TMP/status"); the pod's log: $(pm logs kashim-kashim 2>&1 | tr '\n' ';')"
	fi
}

# check_app NAME WANT: pod NAME's connection, with keepalive (WANT on)
# or without (off), read from its network namespace.
check_app() {
	local name=$1 want=$2 pid
	app_yaml "$name" > "$EHOST_X/$name.yaml"
	pm kube play "/x/$name.yaml" > "$TMP/play.log" 2>&1
	if ! wait_for 60 logs_have "$name-legacy" '^connected$' || ! pid=$(ctr_pid "$name-legacy"); then
		fail "pod $name did not connect: $(tail -n 3 "$TMP/play.log" | tr '\n' ';') $(pm logs "$name-legacy" 2>&1 | tail -n 3 | tr '\n' ';')"
		return 1
	fi
	nsenter -t "$pid" -n ss -tnoi state established > "$TMP/$name.ss"
	peek "$pid" | grep ESTABLISHED > "$TMP/$name.peek"
	if [ "$want" = on ]; then
		if [ "$(grep -c 'timer:(keepalive' "$TMP/$name.ss")" = 2 ] &&
			[ "$(grep -c "keepalive=1 idle=$(conf idle) interval=$(conf interval) count=$(conf count) " "$TMP/$name.peek")" = 2 ]; then
			ok "another pod's connection has keepalive on both ends: $(grep -o 'timer:([^)]*)' "$TMP/$name.ss" | head -n 1) (ss -tnoi in its network namespace), $(grep -o 'keepalive=.*' "$TMP/$name.peek" | head -n 1)"
		else
			fail "another pod's connection: ss: $(tr '\n' ';' < "$TMP/$name.ss") getsockopt: $(tr '\n' ';' < "$TMP/$name.peek")"
		fi
	elif grep -q 'timer:(keepalive' "$TMP/$name.ss" || ! grep -q 'keepalive=0' "$TMP/$name.peek"; then
		fail "after the pod's deletion a new connection still gets keepalive: $(tr '\n' ';' < "$TMP/$name.peek")"
	else
		ok "after the pod's deletion a new pod's connection has no keepalive ($(grep -o 'keepalive=[0-9]* idle=[0-9]*' "$TMP/$name.peek" | head -n 1))"
	fi
	remove_pod "$name"
}

# check_delete HOW CMD...: the pod deleted by CMD detaches kashim.
check_delete() {
	local how=$1 code
	shift
	pm "$@" > "$TMP/delete.log" 2>&1
	if ! wait_for 30 detached; then
		fail "$how: kashim is still attached to machine.slice after the pod's deletion"
	elif ! ehost_in "$H" /usr/local/bin/kashim status 2>&1 | grep -q 'attached to no cgroup'; then
		fail "$how: kashim status still lists: $(ehost_in "$H" /usr/local/bin/kashim status 2>&1 | tr '\n' ';')"
	else
		code=$(pm inspect --format '{{.State.ExitCode}}' kashim-kashim 2> /dev/null)
		ok "$how: the pod detached kashim on SIGTERM (kernel: no program on machine.slice; kashim status: attached to no cgroup${code:+; the container exited $code})"
	fi
}

test_kube_pod() {
	local t0
	preconditions || return
	t0=$SECONDS
	ehost_prepare || return
	ehost_start "$H" || return
	echo "# kube: engine host running in $EHOST_START_MS ms ($((SECONDS - t0)) s with its trees)"
	ehost_import "$H" podman || { fail "podman import of local/bookworm in the engine host: $(tail -n 3 "$TMP/import.log")"; return; }
	build_image || return
	check_drop

	pod_yaml "" > "$EHOST_X/pod.yaml"
	play_kashim "kube play" || return
	check_pod
	check_app app1 on
	# podman kube down (4.3) kills the pod at once: stopped first, the
	# pod gets its grace time, as with a kubelet.
	check_delete "podman pod stop, then podman kube down" pod stop kashim
	pm kube down /x/pod.yaml > /dev/null 2>&1
	check_app app2 off

	play_kashim "kube play again" || return
	check_delete "podman pod rm -f" pod rm -f kashim

	play_kashim "kube play a third time" || return
	pm kube down /x/pod.yaml > /dev/null 2>&1
	if attached; then
		echo "# podman kube down alone: kashim stays attached (podman 4.3 kills the pod without its grace time); detached by hand"
		ehost_in "$H" /usr/local/bin/kashim detach /sys/fs/cgroup/machine.slice
	else
		echo "# podman kube down alone: detached"
	fi
}

run_tests
