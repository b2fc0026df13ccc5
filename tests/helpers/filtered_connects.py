# SPDX-License-Identifier: MIT
# Connections a real program (python3) makes under kashim with address
# filters, each read back with getsockopt from inside (t_hostile_lib.sh
# runs it with KASHIM_ONLY=127.0.0.1,::1, often inside a seccomp sandbox):
#
#   filtered_connects.py [self errno|kill|trap]
#
# With "self", the program installs the sandbox itself after start (after
# kashim loaded), the way a program that sandboxes itself does: a seccomp
# filter denying process_vm_readv and process_vm_writev, raw prctl.
#
# Prints one line per connection: "NAME keepalive=K idle=I user_timeout=U",
# for covered ones (blocking and non-blocking, to 127.0.0.1 and ::1) and
# excluded ones (to 127.0.0.2); "badpointer errno=E" for a connect() with
# an unmapped address; "done" at the end (so a death on the way shows).
import ctypes
import errno
import os
import socket
import struct
import sys

libc = ctypes.CDLL(None, use_errno=True)


def self_sandbox(how):
    actions = {"errno": 0x00050000 | errno.EPERM, "kill": 0x80000000, "trap": 0x00030000}
    nr_offset, allow = 0, 0x7FFF0000
    deny = [310, 311]  # process_vm_readv, process_vm_writev (x86_64)
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
    s = socket.socket()
    rc = libc.connect(s.fileno(), ctypes.c_void_p(8), 16)
    print(f"badpointer rc={rc} errno={errno.errorcode.get(ctypes.get_errno(), '?')}", flush=True)
    print("done", flush=True)


main()
