# SPDX-License-Identifier: MIT
# The kernel matrix: other kernels booted under qemu, each running a script
# of the project's own in the host's root (shared read-only over 9p).
# Source it after lib.sh.  Used by tests/t_kernels.sh (the compact checks
# of tests/helpers/kernel_checks.sh, in make check) and
# tests/helpers/check_kernels.sh (the cgroup test files, make check-kernels).
#
#   kernel_matrix          lines "LABEL BZIMAGE MODDIR": Debian 12's newest
#                          6.1 and 6.12 packages (downloaded once into
#                          $KASHIM_KERNEL_CACHE, /var/cache/kashim-kernels,
#                          extracted there, installed into nothing; MODDIR
#                          their lib/modules/VERSION) and every image of
#                          $KASHIM_KERNELS (the project's shared kernels:
#                          ../shared/kernels beside the checkout, or
#                          /work/shared/kernels; MODDIR "-", all built in).
#                          It fails, saying why on stderr, when one is
#                          missing.
#   kernel_boot LABEL BZIMAGE MODDIR LIMIT SCRIPT [ARG...]
#                          boots the kernel with an initramfs of the test's
#                          own, runs "bash SCRIPT ARG..." in the host's root
#                          as root (with GUEST_ENV's NAME=VALUE), killed after LIMIT seconds; sets GUEST
#                          (a directory: out, the script's output; boot,
#                          the guest's uptime when the script started;
#                          console.log), BOOT_S (the kernel's boot, to the
#                          script) and RUN_S (the whole boot, wall clock).
#                          Fails, saying why in GUEST_WHY, when the script
#                          did not run to its end.
# Every qemu started is killed when the test ends, also when interrupted
# (kernel_cleanup, called from the test's EXIT trap).

KCACHE=${KASHIM_KERNEL_CACHE:-/var/cache/kashim-kernels}
# The Debian packages of the matrix: the newest of each series.
KERNEL_PACKAGES=('^linux-image-6\.1\.0-[0-9]+-amd64$' '^linux-image-6\.12\.[0-9]+\+deb12-amd64$')
# The modules a Debian kernel needs for the guest (their dependencies too).
GUEST_MODULES=(virtio_pci 9pnet_virtio 9p tcp_diag)
QEMU_PIDS=()
ACCEL=""
GUEST_ENV=() # NAME=VALUE for the guest's script

# The project's shared kernel images: $KASHIM_KERNELS, else the first of
# ../shared/kernels beside the checkout (or beside a worktree's parent)
# and /work/shared/kernels that exists.
kernels_dir() {
	local d
	if [ -n "${KASHIM_KERNELS:-}" ]; then
		echo "$KASHIM_KERNELS"
		return
	fi
	for d in "$ROOT/../shared/kernels" "$ROOT/../../shared/kernels" /work/shared/kernels; do
		[ -d "$d" ] && { (cd "$d" && pwd); return; }
	done
}

# debian_kernel REGEX: the newest package matching REGEX, extracted in
# $KCACHE/NAME (once; an older one of the series removed); prints NAME.
debian_kernel() {
	local pkg
	pkg=$(apt-cache search --names-only "$1" | awk '{ print $1 }' | sort -V | tail -n 1)
	if [ -z "$pkg" ]; then
		echo "no package matches $1 (apt-get update?)" >&2
		return 1
	fi
	if [ ! -e "$KCACHE/$pkg/.complete" ]; then
		mkdir -p "$KCACHE" || return 1
		(
			flock 9
			cd "$KCACHE" || exit 1
			[ -e "$pkg/.complete" ] && exit 0
			rm -rf "$pkg" "$pkg.part" "${pkg}_"*.deb
			apt-get download -q "$pkg" > "$pkg.log" 2>&1 &&
				mkdir "$pkg.part" && dpkg-deb -x "${pkg}_"*.deb "$pkg.part" &&
				touch "$pkg.part/.complete" && mv "$pkg.part" "$pkg" && rm -f "${pkg}_"*.deb "$pkg.log" ||
				exit 1
			for old in */; do # the series' older package, replaced
				old=${old%/}
				[[ $old =~ $1 ]] && [ "$old" != "$pkg" ] && rm -rf "$old"
			done
			exit 0
		) 9> "$KCACHE/.lock" || { echo "cannot download $pkg: $(tail -n 3 "$KCACHE/$pkg.log" 2> /dev/null)" >&2; return 1; }
	fi
	echo "$pkg"
}

kernel_matrix() {
	local re pkg dir v
	for re in "${KERNEL_PACKAGES[@]}"; do
		pkg=$(debian_kernel "$re") || return 1
		v=${pkg#linux-image-}
		echo "debian-$v $KCACHE/$pkg/boot/vmlinuz-$v $KCACHE/$pkg/lib/modules/$v"
	done
	dir=$(kernels_dir)
	if [ -z "$dir" ] || ! ls "$dir"/*/bzImage > /dev/null 2>&1; then
		echo "no kernel images in ${dir:-../shared/kernels or /work/shared/kernels} (set KASHIM_KERNELS)" >&2
		return 1
	fi
	for v in "$dir"/*/bzImage; do
		v=${v%/bzImage}
		echo "${v##*/} $v/bzImage -"
	done
}

# module_file MODDIR NAME: NAME's .ko or .ko.xz (none when built in).
module_file() {
	find "$1" \( -name "$2.ko" -o -name "$2.ko.xz" -o -name "${2//_/-}.ko" -o -name "${2//_/-}.ko.xz" \) | head -n 1
}

# module_add MODDIR NAME DIR: NAME after its dependencies (the depends= of
# its .modinfo: the 6.12 package has no modules.dep), decompressed into
# DIR, its name appended to DIR/order.
module_add() {
	local f dep
	grep -qx "$2" "$3/order" 2> /dev/null && return 0
	f=$(module_file "$1" "$2")
	[ -n "$f" ] || return 0 # built in
	case $f in
	*.xz) xz -dc "$f" > "$3/$2.ko" ;;
	*) cp "$f" "$3/$2.ko" ;;
	esac || return 1
	for dep in $(tr '\0' '\n' < "$3/$2.ko" | sed -n 's/^depends=//p' | tr ',' ' '); do
		module_add "$1" "$dep" "$3" || return 1
	done
	echo "$2" >> "$3/order"
}

# make_initramfs MODDIR OUT: busybox (static), /init and the modules.
make_initramfs() {
	local dir=$TMP/initramfs m
	rm -rf "$dir"
	mkdir -p "$dir"/{bin,dev,proc,sys,mnt/host,modules} || return 1
	cp /bin/busybox "$dir/bin/busybox" && ln -s busybox "$dir/bin/sh" || return 1
	cp "$HELPERS/guest_init" "$dir/init" && chmod 755 "$dir/init" || return 1
	touch "$dir/modules/order"
	if [ "$1" != - ]; then
		for m in "${GUEST_MODULES[@]}"; do module_add "$1" "$m" "$dir/modules" || return 1; done
	fi
	(cd "$dir" && find . | busybox cpio -o -H newc 2> /dev/null) | gzip -1 > "$2"
}

# qemu_run LIMIT LOG ARGS...: qemu in the background, killed after LIMIT
# seconds (and by kernel_cleanup); waits for it.
qemu_run() {
	local limit=$1 log=$2
	shift 2
	timeout -k 5 "$limit" qemu-system-x86_64 -nodefaults -no-user-config -display none \
		-m 1024 -smp 1 -no-reboot -serial "file:$log" "$@" > "$log.qemu" 2>&1 &
	QEMU_PIDS+=($!)
	wait $!
}

# The accelerator: KVM when a guest boots under it (a kernel banner on the
# console within 20 s), else TCG.  Here /dev/kvm opens but no guest runs
# (the machine is itself a VM): -cpu host aborts.
kernel_accel() {
	[ -n "$ACCEL" ] && return
	ACCEL=tcg
	[ -w /dev/kvm ] || return 0
	qemu_run 10 "$TMP/kvm.log" -accel kvm -cpu host -kernel "$1" -append "console=ttyS0 panic=-1"
	grep -q "Linux version" "$TMP/kvm.log" 2> /dev/null && ACCEL=kvm
	return 0
}

kernel_boot() {
	local label=$1 image=$2 moddir=$3 limit=$4 script=$5 a start
	local -a a
	shift 5
	GUEST=$TMP/guest-$label
	GUEST_WHY=""
	BOOT_S="" RUN_S=""
	rm -rf "$GUEST"
	mkdir -p "$GUEST/share" || return 1
	kernel_accel "$image"
	if ! make_initramfs "$moddir" "$GUEST/initrd"; then
		GUEST_WHY="cannot make the initramfs"
		return 1
	fi
	{
		printf 'cd %q || exit 1\n' "$ROOT"
		for a in "${GUEST_ENV[@]}"; do printf 'export %q\n' "$a"; done
		printf 'exec bash %q' "$script"
		for a in "$@"; do printf ' %q' "$a"; done
		printf '\n'
	} > "$GUEST/share/run.sh"
	printf '%s\n' "$ROOT" > "$GUEST/share/root" # guest_init binds it back when under /tmp
	start=$(date +%s.%N)
	[ "$ACCEL" = kvm ] && a=(-accel kvm -cpu host) || a=(-accel tcg)
	qemu_run "$limit" "$GUEST/console.log" "${a[@]}" \
		-kernel "$image" -initrd "$GUEST/initrd" -append "console=ttyS0 panic=-1 quiet" \
		-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
		-virtfs "local,path=$GUEST/share,mount_tag=results,security_model=none"
	RUN_S=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	BOOT_S=$(cat "$GUEST/share/boot" 2> /dev/null)
	ln -sf share/out "$GUEST/out"
	if [ ! -e "$GUEST/share/status" ]; then
		if [ -z "$BOOT_S" ]; then
			GUEST_WHY="the guest did not start the script within $limit s: $(grep -E 'kashim-init|Kernel panic|error' "$GUEST/console.log" "$GUEST/console.log.qemu" 2> /dev/null | tail -n 3 | tr '\n' ';')"
		else
			GUEST_WHY="the script did not end within $limit s (boot $BOOT_S s): $(tail -n 2 "$GUEST/share/out" 2> /dev/null | tr '\n' ';')"
		fi
		return 1
	fi
	return 0
}

kernel_cleanup() {
	local p
	for p in "${QEMU_PIDS[@]}"; do
		pkill -KILL -P "$p" 2> /dev/null
		kill -KILL "$p" 2> /dev/null
	done
	QEMU_PIDS=()
}
