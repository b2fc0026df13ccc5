#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The kernel's view of a cgroup's sock_ops programs, read with bpf(2)
directly (no bpftool here), and a foreign program to attach, for the cgroup
mode's tests:

  bpfcg.py foreign CGROUP FLAGS   load a trivial sock_ops program named
                                  foreign_test, attach it (FLAGS: override,
                                  multi or none), print its id
  bpfcg.py progs CGROUP [effective]  "ID NAME" per program attached there
                                  (or in force there, with effective)
  bpfcg.py detach CGROUP ID       detach that program
"""
import ctypes, os, sys

NR_BPF = {"x86_64": 321, "aarch64": 280}[os.uname().machine]
PROG_LOAD, PROG_ATTACH, PROG_DETACH, GET_FD_BY_ID, GET_INFO, PROG_QUERY = 5, 8, 9, 13, 15, 16
SOCK_OPS_TYPE, CGROUP_SOCK_OPS = 13, 3
FLAGS = {"none": 0, "override": 1, "multi": 2}
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def bpf(cmd, attr):
    buf = ctypes.create_string_buffer(bytes(attr), 128)
    r = libc.syscall(NR_BPF, cmd, buf, 128)
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r, buf.raw


def u32(*v):
    return b"".join(x.to_bytes(4, "little") for x in v)


def u64(v):
    return v.to_bytes(8, "little")


def prog_name(pid):
    try:
        fd, _ = bpf(GET_FD_BY_ID, u32(pid))
    except OSError:
        return "?"
    info = ctypes.create_string_buffer(256)
    try:
        bpf(GET_INFO, u32(fd, 256) + u64(ctypes.addressof(info)))
    finally:
        os.close(fd)
    return info.raw[64:80].split(b"\0")[0].decode() or "-"


def main():
    cmd, cg = sys.argv[1], sys.argv[2]
    cgfd = os.open(cg, os.O_RDONLY | os.O_DIRECTORY)
    if cmd == "foreign":
        # r0 = 1; exit
        insns = bytes([0xb7, 0, 0, 0, 1, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0])
        ib = ctypes.create_string_buffer(insns, len(insns))
        lic = ctypes.create_string_buffer(b"GPL")
        attr = u32(SOCK_OPS_TYPE, 2) + u64(ctypes.addressof(ib)) + u64(ctypes.addressof(lic))
        attr += u32(0, 0) + u64(0) + u32(0, 0) + b"foreign_test".ljust(16, b"\0")
        pfd, _ = bpf(PROG_LOAD, attr)
        bpf(PROG_ATTACH, u32(cgfd, pfd, CGROUP_SOCK_OPS, FLAGS[sys.argv[3]]))
        info = ctypes.create_string_buffer(256)
        bpf(GET_INFO, u32(pfd, 256) + u64(ctypes.addressof(info)))
        print(int.from_bytes(info.raw[4:8], "little"))
    elif cmd == "progs":
        ids = (ctypes.c_uint32 * 64)()
        flags = 1 if len(sys.argv) > 3 and sys.argv[3] == "effective" else 0
        _, out = bpf(PROG_QUERY, u32(cgfd, CGROUP_SOCK_OPS, flags, 0) + u64(ctypes.addressof(ids)) + u32(64))
        n = int.from_bytes(out[24:28], "little")
        for i in range(n):
            print(ids[i], prog_name(ids[i]))
    elif cmd == "detach":
        fd, _ = bpf(GET_FD_BY_ID, u32(int(sys.argv[3])))
        bpf(PROG_DETACH, u32(cgfd, fd, CGROUP_SOCK_OPS))
    else:
        sys.exit("bpfcg.py: unknown command " + cmd)


main()
