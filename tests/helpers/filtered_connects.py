# SPDX-License-Identifier: MIT
# Connections a real program (python3) makes under kashim with address
# filters, each read back with getsockopt from inside (t_hostile_lib.sh
# runs it with KASHIM_ONLY=127.0.0.1,::1, often inside a seccomp sandbox):
#
#   filtered_connects.py [self errno|kill|trap|sigprocmask-ERRNO]
#
# With "self", the program installs the sandbox itself after start (after
# kashim loaded), the way a program that sandboxes itself does: a seccomp
# filter denying process_vm_readv and process_vm_writev, raw prctl; with
# sigprocmask-ERRNO (einval, eperm, efault, enosys), one that answers every
# rt_sigprocmask with that errno instead, whatever its arguments (the call
# kashim checks an address with).
#
# Prints one line per connection: "NAME keepalive=K idle=I user_timeout=U",
# for covered ones (blocking and non-blocking, to 127.0.0.1, to ::1, and to
# ::1 with the 24-byte RFC 2133 sockaddr_in6 placed at the very end of a
# mapping) and excluded ones (to 127.0.0.2); "badpointer rc=R errno=E" for
# connect() calls with an unmapped, a NULL, and a half-unmapped address;
# "done" at the end (so a death on the way shows).
import ctypes
import errno
import os
import socket
import struct
import sys

libc = ctypes.CDLL(None, use_errno=True)


libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.connect.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint]


def self_sandbox(how):
    actions = {"errno": 0x00050000 | errno.EPERM, "kill": 0x80000000, "trap": 0x00030000}
    nr_offset, allow = 0, 0x7FFF0000
    deny = [310, 311]  # process_vm_readv, process_vm_writev (x86_64)
    if how.startswith("sigprocmask-"):
        actions[how] = 0x00050000 | getattr(errno, how[len("sigprocmask-"):].upper())
        deny = [14]  # rt_sigprocmask (x86_64)
    insn = [(0x20, 0, 0, nr_offset)]  # BPF_LD|BPF_W|BPF_ABS seccomp_data.nr
    for nr in deny:
        insn += [(0x15, 0, 1, nr), (0x06, 0, 0, actions[how])]  # JEQ, RET action
    insn += [(0x06, 0, 0, allow)]
    raw = b"".join(struct.pack("HBBI", *i) for i in insn)
    buf = ctypes.create_string_buffer(raw)
    prog = struct.pack("HxxxxxxP", len(insn), ctypes.addressof(buf))
    pbuf = ctypes.create_string_buffer(prog)
    if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, pbuf, 0, 0) != 0:  # NO_NEW_PRIVS, SECCOMP
        print("cannot install the filter: errno", ctypes.get_errno())
        sys.exit(2)


def state(name, s):
    ka = s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
    idle = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
    ut = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)
    print(f"{name} keepalive={ka} idle={idle} user_timeout={ut}", flush=True)


def listener(family, host):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((host, 0))
    s.listen(16)
    return s


def end_of_mapping(raw):
    """raw copied to the very end of a page whose next page is unmapped."""
    page = libc.mmap(None, 8192, 3, 0x22, -1, 0)  # PROT_READ|WRITE, MAP_PRIVATE|ANONYMOUS
    if page in (None, ctypes.c_void_p(-1).value) or libc.munmap(page + 4096, 4096) != 0:
        print("cannot map the test page")
        sys.exit(2)
    ctypes.memmove(page + 4096 - len(raw), raw, len(raw))
    return page + 4096 - len(raw)


def rfc2133_connect(name, port, blocking):
    """connect() to [::1]:port with the 24-byte sockaddr_in6 (no scope id)."""
    raw = struct.pack("=H", socket.AF_INET6) + struct.pack("!H", port) + b"\0" * 4
    raw += socket.inet_pton(socket.AF_INET6, "::1")
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setblocking(blocking)
    rc = libc.connect(s.fileno(), end_of_mapping(raw), len(raw))
    e = ctypes.get_errno()
    if rc != 0 and e != errno.EINPROGRESS:
        print(f"{name} connect failed: {os.strerror(e)}")
    state(name, s)
    return s


def bad_connect(name, addr, length):
    s = socket.socket()
    rc = libc.connect(s.fileno(), addr, length)
    print(f"badpointer {name} rc={rc} errno={errno.errorcode.get(ctypes.get_errno(), '?')}",
          flush=True)
    s.close()


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "self":
        # A first socket, so that kashim has surely loaded before the filter.
        socket.socket().close()
        self_sandbox(sys.argv[2])
    keep = []
    targets = [("covered-v4", socket.AF_INET, "127.0.0.1"),
               ("covered-v6", socket.AF_INET6, "::1"),
               ("excluded-v4", socket.AF_INET, "127.0.0.2")]
    for name, family, host in targets:
        lst = listener(family, host)
        addr = lst.getsockname()
        blocking = socket.socket(family, socket.SOCK_STREAM)
        blocking.connect(addr)
        state(name + "-blocking", blocking)
        nb = socket.socket(family, socket.SOCK_STREAM)
        nb.setblocking(False)
        rc = nb.connect_ex(addr)
        if rc not in (0, errno.EINPROGRESS):
            print(f"{name}-nonblocking connect failed: {os.strerror(rc)}")
        state(name + "-nonblocking", nb)
        keep += [lst, blocking, nb]
        if host == "::1":
            keep.append(rfc2133_connect("covered-v6-rfc2133-blocking", addr[1], True))
            keep.append(rfc2133_connect("covered-v6-rfc2133-nonblocking", addr[1], False))
    bad_connect("unmapped", 8, 16)
    bad_connect("NULL", None, 16)
    v4 = struct.pack("=H", socket.AF_INET) + struct.pack("!H", 9) + socket.inet_aton("127.0.0.1")
    bad_connect("half-unmapped", end_of_mapping(v4[:12]), 16)  # 4 bytes past the mapping
    print("done", flush=True)


main()
