"""SIF awareness without the singularity binary: parse a SIF file's header and descriptor
table, pull out architecture, definition file, labels, partitions and signatures, and check
OpenPGP signatures against the keys of the built-in keystore.

Format: reference/library-client.md section 10. Only the header, the descriptor table and the
small metadata objects are read; partitions are hashed in chunks, never loaded whole.
"""
from __future__ import annotations

import hashlib
import json
import logging
import struct
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import select

log = logging.getLogger(__name__)

HEADER_SIZE = 128
DESCRIPTOR_SIZE = 585
MAGIC = b"SIF_MAGIC\0"
GROUP_MASK = 0xF0000000
MAX_METADATA = 4 * 1024 * 1024       # definition files, labels, signatures: small objects only
CHUNK = 1024 * 1024

ARCHES = {"01": "386", "02": "amd64", "03": "arm", "04": "arm64", "05": "ppc64", "06": "ppc64le",
          "07": "mips", "08": "mipsle", "09": "mips64", "10": "mips64le", "11": "s390x",
          "12": "riscv64", "13": "loong64"}
DATA_TYPES = {0x4001: "deffile", 0x4002: "envvar", 0x4003: "labels", 0x4004: "partition",
              0x4005: "signature", 0x4006: "generic-json", 0x4007: "generic", 0x4008: "crypto-message",
              0x4009: "sbom", 0x400A: "oci-root-index", 0x400B: "oci-blob"}
FS_TYPES = {1: "squashfs", 2: "ext3", 3: "immutable-object", 4: "raw", 5: "encrypted-squashfs"}
PART_TYPES = {1: "system", 2: "primary-system", 3: "data", 4: "overlay"}
HASH_TYPES = {1: "sha256", 2: "sha384", 3: "sha512", 4: "blake2s", 5: "blake2b"}


class SifError(ValueError):
    """The file is not a (valid) SIF image."""


@dataclass
class Descriptor:
    raw: bytes
    data_type: int
    object_id: int
    group_id: int          # without the group bit; 0 = no group
    link: int              # raw, incl. the group bit
    offset: int
    size: int
    name: str
    extra: bytes

    @property
    def kind(self) -> str:
        return DATA_TYPES.get(self.data_type, hex(self.data_type))


@dataclass
class SifFile:
    arch: str | None
    uuid: str
    created: int
    modified: int
    descriptors: list[Descriptor] = field(default_factory=list)
    header: bytes = b""


def _arch(code: bytes) -> str | None:
    return ARCHES.get(code.rstrip(b"\0").decode("ascii", "replace"))


def parse(handle) -> SifFile:
    """Header and used descriptors of an open SIF file; raises SifError."""
    handle.seek(0, 2)
    file_size = handle.tell()
    handle.seek(0)
    header = handle.read(HEADER_SIZE)
    if len(header) < HEADER_SIZE or header[32:42] != MAGIC:
        raise SifError("not a SIF file (no SIF_MAGIC)")
    if header[42:45] != b"01\0":
        raise SifError("unsupported SIF version")
    created, modified, _free, total, table_offset, table_size = struct.unpack("<qqqqqq", header[64:112])
    if total < 0 or total > 100_000 or table_offset < HEADER_SIZE or table_size != total * DESCRIPTOR_SIZE \
            or table_offset + table_size > file_size:
        raise SifError("corrupt SIF descriptor table")
    sif = SifFile(arch=_arch(header[45:48]), uuid=str(uuid.UUID(bytes=header[48:64])),
                  created=created, modified=modified, header=header)
    handle.seek(table_offset)
    table = handle.read(table_size)
    for slot in range(total):
        raw = table[slot * DESCRIPTOR_SIZE:(slot + 1) * DESCRIPTOR_SIZE]
        if not raw[4]:
            continue
        data_type, _used, object_id, group, link, offset, size = struct.unpack("<iBIIIqq", raw[:33])
        if offset < 0 or size < 0 or offset + size > file_size:
            raise SifError(f"SIF object {object_id} lies outside the file")
        sif.descriptors.append(Descriptor(
            raw=raw, data_type=data_type, object_id=object_id, group_id=group & ~GROUP_MASK, link=link,
            offset=offset, size=size, name=raw[73:201].split(b"\0", 1)[0].decode("utf-8", "replace"),
            extra=raw[201:585]))
    return sif


def read_object(handle, descriptor: Descriptor, limit: int = MAX_METADATA) -> bytes:
    if descriptor.size > limit:
        raise SifError(f"SIF object {descriptor.object_id} is too large to inspect")
    handle.seek(descriptor.offset)
    return handle.read(descriptor.size)


def _fingerprint(descriptor: Descriptor) -> str | None:
    raw = descriptor.extra[4:24]
    return raw.hex().upper() if any(raw) else None


def describe(handle, sif: SifFile) -> dict:
    """JSON-able metadata: what the API serves as `sif_info`."""
    info: dict = {"arch": sif.arch, "uuid": sif.uuid, "created": sif.created, "modified": sif.modified,
                  "deffile": None, "labels": None, "partitions": [], "signatures": [], "objects": []}
    for d in sif.descriptors:
        info["objects"].append({"id": d.object_id, "type": d.kind, "group": d.group_id, "link": d.link,
                                "size": d.size, "name": d.name})
        if d.data_type == 0x4001 and info["deffile"] is None:
            info["deffile"] = read_object(handle, d).decode("utf-8", "replace")
        elif d.data_type == 0x4003 and info["labels"] is None:
            try:
                info["labels"] = json.loads(read_object(handle, d) or b"null")
            except ValueError:
                info["labels"] = None
        elif d.data_type == 0x4004:
            fstype, parttype = struct.unpack("<ii", d.extra[:8])
            info["partitions"].append({"id": d.object_id, "fstype": FS_TYPES.get(fstype, str(fstype)),
                                       "parttype": PART_TYPES.get(parttype, str(parttype)),
                                       "arch": _arch(d.extra[8:11]), "size": d.size})
        elif d.data_type == 0x4005:
            hashtype = struct.unpack("<i", d.extra[:4])[0]
            info["signatures"].append({"id": d.object_id, "hash": HASH_TYPES.get(hashtype, str(hashtype)),
                                       "fingerprint": _fingerprint(d), "link": d.link,
                                       "verified": False, "reason": "Unknown"})
    return info


# -- signatures ---------------------------------------------------------------------

def _hash_range(handle, offset: int, size: int, hasher) -> None:
    handle.seek(offset)
    remaining = size
    while remaining > 0:
        chunk = handle.read(min(CHUNK, remaining))
        if not chunk:
            raise SifError("SIF object data is truncated")
        hasher.update(chunk)
        remaining -= len(chunk)


def _new_hasher(spec: str):
    alg, _, _hex = spec.partition(":")
    if alg not in ("sha224", "sha256", "sha384", "sha512"):
        raise SifError(f"unsupported digest algorithm {alg}")
    return hashlib.new(alg)


def _check(spec: str, hasher) -> bool:
    return spec.partition(":")[2].lower() == hasher.hexdigest()


def _header_digest_ok(sif: SifFile, spec: str) -> bool:
    hasher = _new_hasher(spec)
    for start, stop in ((0, 32), (32, 42), (42, 45), (48, 64)):
        hasher.update(sif.header[start:stop])
    return _check(spec, hasher)


def _descriptor_digest_ok(d: Descriptor, relative_id: int, spec: str) -> bool:
    hasher = _new_hasher(spec)
    raw = d.raw
    hasher.update(raw[0:4])                               # data type
    hasher.update(raw[4:5])                               # used
    hasher.update(struct.pack("<I", relative_id))
    hasher.update(raw[13:17])                             # link
    hasher.update(raw[25:33])                             # size
    hasher.update(raw[41:49])                             # created
    hasher.update(raw[57:73])                             # uid, gid
    hasher.update(raw[73:585])                            # name, extra
    return _check(spec, hasher)


def _signed_objects(sif: SifFile, signature: Descriptor) -> list[Descriptor]:
    if signature.link & GROUP_MASK:
        group = signature.link & ~GROUP_MASK
        return [d for d in sif.descriptors if d.group_id == group and d.data_type != 0x4005]
    return [d for d in sif.descriptors if d.object_id == signature.link]


def _plaintext_ok(handle, sif: SifFile, signature: Descriptor, plaintext: str) -> bool:
    """Recompute the digests the signed plaintext claims (current and legacy formats)."""
    objects = _signed_objects(sif, signature)
    if not objects:
        return False
    if plaintext.startswith("SIFHASH:"):
        hashtype = struct.unpack("<i", signature.extra[:4])[0]
        alg = HASH_TYPES.get(hashtype, "sha384")
        hasher = _new_hasher(alg + ":")
        for d in objects:
            _hash_range(handle, d.offset, d.size, hasher)
        return plaintext.split("\n")[1].strip().lower() == hasher.hexdigest()
    metadata = json.loads(plaintext)
    if metadata.get("version") != 1 or not _header_digest_ok(sif, metadata["header"]["digest"]):
        return False
    base = min(d.object_id for d in objects)
    by_relative = {d.object_id - base: d for d in objects}
    claimed = metadata.get("objects") or []
    if sorted(o["relativeId"] for o in claimed) != sorted(by_relative):
        return False
    for entry in claimed:
        d = by_relative[entry["relativeId"]]
        if not _descriptor_digest_ok(d, entry["relativeId"], entry["descriptorDigest"]):
            return False
        hasher = _new_hasher(entry["objectDigest"])
        _hash_range(handle, d.offset, d.size, hasher)
        if not _check(entry["objectDigest"], hasher):
            return False
    return True


def verify_signature(handle, sif: SifFile, signature: Descriptor, armored_key: str | None) -> tuple[bool, str]:
    """(verified, reason): reason is "Verified", "Unknown" (no such key), or why it failed."""
    import pgpy   # imported on use: PGPy and its dependencies cost ~13 MiB of server memory
    if armored_key is None:
        return False, "Unknown"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            key, _ = pgpy.PGPKey.from_blob(armored_key)
            message = pgpy.PGPMessage.from_blob(read_object(handle, signature).decode("utf-8"))
            if not key.verify(message):
                return False, "BadSignature"
        fingerprint = _fingerprint(signature)
        if fingerprint and str(key.fingerprint).replace(" ", "").upper() != fingerprint:
            return False, "WrongKey"
        if not _plaintext_ok(handle, sif, signature, str(message.message)):
            return False, "Modified"
    except SifError as err:
        return False, str(err)
    except Exception as err:  # noqa: BLE001 - any malformed signature block is "not verified"
        log.info("signature %s not verifiable: %s", signature.object_id, err)
        return False, "Invalid"
    return True, "Verified"


def inspect_file(path: str, find_key=lambda fingerprint: None) -> dict:
    """Parse the SIF at `path` and check its signatures; `find_key(fingerprint)` -> armored key."""
    with open(path, "rb") as handle:
        sif = parse(handle)
        info = describe(handle, sif)
        signatures = {d.object_id: d for d in sif.descriptors if d.data_type == 0x4005}
        for entry in info["signatures"]:
            verified, reason = verify_signature(handle, sif, signatures[entry["id"]],
                                                entry["fingerprint"] and find_key(entry["fingerprint"]))
            entry["verified"], entry["reason"] = verified, reason
    return info


def keystore_lookup(dbsession):
    from ..models import PublicKey

    def find_key(fingerprint: str) -> str | None:
        return dbsession.scalar(select(PublicKey.armored).where(PublicKey.fingerprint == fingerprint.upper()))
    return find_key


def primary_partition(info: dict) -> dict | None:
    for part in info.get("partitions", ()):
        if part["parttype"] == "primary-system":
            return part
    return None


def annotate_image(request, image, path: str) -> None:
    """Record arch, definition file, labels and signatures of the SIF at `path` on `image`.

    A file that does not parse is recorded as ``sif_info = {"error": ...}``; the library views
    reject such pushes, other protocols may store SIF-typed blobs as they are.
    """
    try:
        info = inspect_file(path, keystore_lookup(request.dbsession))
    except (SifError, OSError, struct.error, ValueError) as err:
        image.sif_info = {"error": str(err)}
        image.signed = image.signature_verified = False
        image.fingerprints = []
        return
    info["checked"] = datetime.now(timezone.utc).isoformat()
    image.sif_info = info
    if info["arch"] and not image.arch:
        image.arch = info["arch"]
    part = primary_partition(info)
    image.encrypted = bool(part and part["fstype"] == "encrypted-squashfs")
    signatures = info["signatures"]
    image.signed = bool(signatures)
    image.signature_verified = bool(signatures) and all(s["verified"] for s in signatures)
    image.fingerprints = sorted({s["fingerprint"] for s in signatures if s["fingerprint"]})


def recheck_image(request, image) -> None:
    """Check an image's signatures again (after a key was added to the keystore)."""
    if image.is_sif and image.completed and request.blobstore.exists(image.digest):
        annotate_image(request, image, request.blobstore.path(image.digest))
