#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes a damaged copy of a 64-bit little-endian ELF file, for the tests
of kashim doctor and the fuzzing corpus.

usage: elfmangle.py IN OUT EDIT [ARG]
  truncate N        keep the first N bytes (N < 0: all but the last -N)
  phnum N           e_phnum = N (the table itself is left as it is)
  shoff-past-eof    e_shoff points 4096 bytes past the end
  many-sections N   the section headers, then copies of .dynamic and
                    .dynsym (alternating) up to N in all; more than 65535 through the
                    extended count in section 0
  strtab-anywhere   DT_STRTAB and the .dynamic string link point nowhere
  needed-anywhere   every DT_NEEDED offset points past its string table
  interp-no-nul     the PT_INTERP string loses its terminating NUL
  class32           EI_CLASS says 32-bit
"""
import struct
import sys

EH = struct.Struct("<16sHHIQQQIHHHHHH")
SH = struct.Struct("<IIQQQQIIQQ")
PH = struct.Struct("<IIQQQQQQ")
DYN = struct.Struct("<qQ")
SHT_DYNSYM, SHT_DYNAMIC, PT_INTERP = 11, 6, 3
DT_NULL, DT_NEEDED, DT_STRTAB = 0, 1, 5


def header(b):
    return list(EH.unpack_from(b, 0))


def put_header(b, h):
    EH.pack_into(b, 0, *h)


def sections(b):
    h = header(b)
    shoff, shnum = h[6], h[12]
    return [(shoff + i * SH.size, list(SH.unpack_from(b, shoff + i * SH.size))) for i in range(shnum)]


def dynamic_entries(b):
    for off, s in sections(b):
        if s[1] == SHT_DYNAMIC:
            for k in range(s[5] // DYN.size):
                at = s[4] + k * DYN.size
                tag, val = DYN.unpack_from(b, at)
                if tag == DT_NULL:
                    return
                yield at, tag, val


def main():
    src, dst, edit = sys.argv[1:4]
    arg = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    b = bytearray(open(src, "rb").read())
    h = header(b)
    if edit == "truncate":
        b = b[:arg]
    elif edit == "phnum":
        h[10] = arg
        put_header(b, h)
    elif edit == "shoff-past-eof":
        h[6] = len(b) + 4096
        put_header(b, h)
    elif edit == "many-sections":
        old = [s for _, s in sections(b)]
        picks = [s for s in old if s[1] in (SHT_DYNAMIC, SHT_DYNSYM)]
        table = bytearray()
        for i in range(arg):
            s = list(old[i]) if i < len(old) else picks[i % len(picks)]
            if i == 0 and arg > 0xFFFF:
                s[5] = arg  # sh_size: the real count
            table += SH.pack(*s)
        while len(b) % 8:
            b.append(0)
        h[6] = len(b)
        h[12] = arg if arg <= 0xFFFF else 0
        b += table
        put_header(b, h)
    elif edit == "strtab-anywhere":
        for at, tag, val in list(dynamic_entries(b)):
            if tag == DT_STRTAB:
                DYN.pack_into(b, at, tag, 0xDEADBEEF000)
        for off, s in sections(b):
            if s[1] == SHT_DYNAMIC:
                s[6] = 0xFFFF
                SH.pack_into(b, off, *s)
    elif edit == "needed-anywhere":
        for at, tag, val in list(dynamic_entries(b)):
            if tag == DT_NEEDED:
                DYN.pack_into(b, at, tag, 0x7FFFFFFF)
    elif edit == "interp-no-nul":
        for i in range(h[10]):
            p = PH.unpack_from(b, h[5] + i * PH.size)
            if p[0] == PT_INTERP:
                b[p[2] + p[5] - 1] = ord("x")
    elif edit == "class32":
        b[4] = 1
    else:
        sys.exit("elfmangle: unknown edit " + edit)
    open(dst, "wb").write(b)


if __name__ == "__main__":
    main()
