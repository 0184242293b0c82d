#!/usr/bin/env python3
"""Checks macOS binaries where they cannot run: parses each Mach-O (thin or universal) and fails
unless every library it loads is under /usr/lib/ or /System/Library/Frameworks/, it runs on macOS
11.0 or older (LC_BUILD_VERSION minos, or LC_VERSION_MIN_MACOSX), and an arm64 slice carries a
valid ad-hoc code signature: the CodeDirectory's hash of every page up to the signature, and of
every special slot present (requirements, entitlements), matches the bytes.

    scripts/check-macho.py BINARY...      one line per binary; exit 1 naming the first failure

Standard library only, so it runs on any CI machine with python3.
"""
import hashlib
import struct
import sys

MAX_MINOS = (11, 0)
ALLOWED_PREFIXES = ("/usr/lib/", "/System/Library/Frameworks/")

MH_MAGIC_64 = 0xFEEDFACF
FAT_MAGIC = 0xCAFEBABE
CPU_X86_64 = 0x01000007
CPU_ARM64 = 0x0100000C
CPU_NAMES = {CPU_X86_64: "x86_64", CPU_ARM64: "arm64"}

LC_LOAD_DYLIB = 0xC
LC_LOAD_WEAK_DYLIB = 0x80000018
LC_REEXPORT_DYLIB = 0x8000001F
LC_LAZY_LOAD_DYLIB = 0x20
LC_LOAD_UPWARD_DYLIB = 0x80000023
DYLIB_COMMANDS = {LC_LOAD_DYLIB, LC_LOAD_WEAK_DYLIB, LC_REEXPORT_DYLIB, LC_LAZY_LOAD_DYLIB, LC_LOAD_UPWARD_DYLIB}
LC_CODE_SIGNATURE = 0x1D
LC_VERSION_MIN_MACOSX = 0x24
LC_BUILD_VERSION = 0x32
PLATFORM_MACOS = 1

CSMAGIC_EMBEDDED_SIGNATURE = 0xFADE0CC0
CSMAGIC_CODEDIRECTORY = 0xFADE0C02
CS_ADHOC = 0x2
HASHES = {1: hashlib.sha1, 2: hashlib.sha256}


class Bad(Exception):
    """A check that failed; the message names what and why."""


def version(packed):
    return (packed >> 16, (packed >> 8) & 0xFF)


def check_slice(data):
    """Checks one thin 64-bit Mach-O; returns a summary line."""
    magic, cputype, _, _, ncmds = struct.unpack_from("<IiiII", data, 0)
    if magic != MH_MAGIC_64:
        raise Bad(f"not a 64-bit little-endian Mach-O (magic {magic:#x})")
    arch = CPU_NAMES.get(cputype & 0xFFFFFFFF, f"cpu {cputype:#x}")
    offset, libs, minos, signature = 32, [], None, None
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", data, offset)
        if cmd in DYLIB_COMMANDS:
            (name_off,) = struct.unpack_from("<I", data, offset + 8)
            name = data[offset + name_off : offset + size].split(b"\0")[0].decode()
            libs.append(name)
        elif cmd == LC_BUILD_VERSION:
            platform, packed = struct.unpack_from("<II", data, offset + 8)
            if platform != PLATFORM_MACOS:
                raise Bad(f"{arch}: built for platform {platform}, not macOS")
            minos = version(packed)
        elif cmd == LC_VERSION_MIN_MACOSX:
            minos = version(struct.unpack_from("<I", data, offset + 8)[0])
        elif cmd == LC_CODE_SIGNATURE:
            signature = struct.unpack_from("<II", data, offset + 8)
        offset += size
    if not libs:
        raise Bad(f"{arch}: loads no library (libSystem is expected)")
    for lib in libs:
        if not lib.startswith(ALLOWED_PREFIXES):
            raise Bad(f"{arch}: links {lib}, outside {' and '.join(ALLOWED_PREFIXES)}")
    if minos is None:
        raise Bad(f"{arch}: no LC_BUILD_VERSION or LC_VERSION_MIN_MACOSX")
    if minos > MAX_MINOS:
        raise Bad(f"{arch}: needs macOS {minos[0]}.{minos[1]}, newer than {MAX_MINOS[0]}.{MAX_MINOS[1]}")
    signed = "unsigned"
    if signature is not None:
        signed = check_signature(data, *signature, arch)
    elif cputype == CPU_ARM64:
        raise Bad("arm64: no LC_CODE_SIGNATURE (Apple silicon runs nothing unsigned)")
    return f"{arch}: macOS {minos[0]}.{minos[1]}+, {len(libs)} system libraries, {signed}"


def check_signature(data, dataoff, datasize, arch):
    """Verifies the code signature's CodeDirectory against the bytes it covers."""
    blob = data[dataoff : dataoff + datasize]
    if len(blob) < 12:
        raise Bad(f"{arch}: the code signature lies outside the file")
    magic, _, count = struct.unpack_from(">III", blob, 0)
    if magic != CSMAGIC_EMBEDDED_SIGNATURE:
        raise Bad(f"{arch}: the code signature is not an embedded-signature superblob ({magic:#x})")
    blobs = {}
    for i in range(count):
        slot, off = struct.unpack_from(">II", blob, 12 + 8 * i)
        length = struct.unpack_from(">I", blob, off + 4)[0]
        blobs[slot] = blob[off : off + length]
    cd = blobs.get(0)
    if cd is None or struct.unpack_from(">I", cd, 0)[0] != CSMAGIC_CODEDIRECTORY:
        raise Bad(f"{arch}: the code signature has no CodeDirectory")
    (_, _, _, flags, hash_off, _, n_special, n_code, code_limit,
     hash_size, hash_type, _, page_log2) = struct.unpack_from(">IIIIIIIIIBBBB", cd, 0)
    if not flags & CS_ADHOC:
        raise Bad(f"{arch}: the signature is not ad-hoc (flags {flags:#x})")
    if hash_type not in HASHES:
        raise Bad(f"{arch}: unknown CodeDirectory hash type {hash_type}")
    if code_limit != dataoff:
        raise Bad(f"{arch}: the signature covers {code_limit} bytes, not the {dataoff} before it")
    digest = HASHES[hash_type]
    page = 1 << page_log2
    if n_code != (code_limit + page - 1) // page:
        raise Bad(f"{arch}: {n_code} page hashes for {code_limit} bytes of {page}-byte pages")
    for i in range(n_code):
        want = cd[hash_off + i * hash_size : hash_off + (i + 1) * hash_size]
        got = digest(data[i * page : min((i + 1) * page, code_limit)]).digest()[:hash_size]
        if got != want:
            raise Bad(f"{arch}: page {i} (bytes {i * page}..) does not match its signed hash")
    # Special slots hash the other blobs of the superblob: slot -k is the blob of type k.
    for kind, other in blobs.items():
        if 0 < kind <= n_special:
            want = cd[hash_off - kind * hash_size : hash_off - (kind - 1) * hash_size]
            if digest(other).digest()[:hash_size] != want:
                raise Bad(f"{arch}: special slot {kind} does not match its signed hash")
    return f"ad-hoc signed, {n_code} pages verified ({digest().name})"


def check(path):
    data = open(path, "rb").read()
    if len(data) >= 8 and struct.unpack_from(">I", data, 0)[0] == FAT_MAGIC:
        (n,) = struct.unpack_from(">I", data, 4)
        lines = []
        for i in range(n):
            _, _, off, size, _ = struct.unpack_from(">iiIII", data, 8 + 20 * i)
            lines.append(check_slice(data[off : off + size]))
        return "universal: " + "; ".join(lines)
    return check_slice(data)


def main(paths):
    if not paths:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    for path in paths:
        try:
            print(f"{path}: {check(path)}")
        except (Bad, struct.error, UnicodeDecodeError, OSError) as e:
            print(f"check-macho: {path}: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
