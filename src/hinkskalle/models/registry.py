"""The resource tree: Entity -> Collection -> Container -> Image/Tag/Manifest.

These ORM objects are also Pyramid resources: each has ``__parent__``/``__name__`` and an
``__acl__`` built from its owner, its group and its privacy flags, inherited upwards to the
Root, so one ACL walk answers every protocol's permission question.
"""
from __future__ import annotations

from datetime import datetime

from pyramid.authorization import Allow, Authenticated, Everyone
from sqlalchemy import (JSON, Boolean, ForeignKey, Index, LargeBinary, String, Text,
                        UniqueConstraint, select)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship, validates

from ..security.permissions import READ, WRITE, Permission, group_principal, user_principal
from .meta import Base, BigInt, UTCDateTime, utcnow
from .user import Group, User

SIF_MEDIA_TYPE = "application/vnd.sylabs.sif.layer.v1.sif"
SIF_CONFIG_MEDIA_TYPE = "application/vnd.sylabs.sif.config.v1+json"
# Blob media types that are images in their own right (listed, tagged, counted in `size`).
VISIBLE_MEDIA_TYPES = frozenset({
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar",
    SIF_MEDIA_TYPE,
})
UPLOAD_STATES = ("initialized", "uploading", "uploaded", "completed", "failed", "broken")
# MySQL's plain BLOB stops at 64 KiB; manifests may be up to the configured maximum.
ManifestBytes = LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")


class LowerCaseName:
    """Names are stored lower-cased, so lookups compare with `=` and use the unique indexes."""

    @validates("name")
    def _lower_name(self, _key, value):
        return value.lower() if isinstance(value, str) else value


def _name_of(name_column, key):
    """`name_column` of the row that `key` points to, loaded as a column of this row.

    ACLs and JSON need only the names of owners and groups. Loading them with the row costs
    far less than a User (or Group) row per level, on the lookup every request makes.
    """
    model = name_column.class_
    return column_property(select(name_column).where(model.id == key).correlate_except(model)
                           .scalar_subquery())


_ABSENT = object()


def _current_name(row, relation: str, column: str, attribute: str) -> str | None:
    """From the related row where the session holds it (it may just have been assigned),
    else from the name column loaded with `row`."""
    related = row.__dict__.get(relation, _ABSENT)
    if related is _ABSENT:
        return getattr(row, column)
    return getattr(related, attribute) if related is not None else None


class OwnerName:
    """`owner_name`: the owner's username, without loading the owner's row (`_owner_name`)."""

    @property
    def owner_name(self) -> str | None:
        return _current_name(self, "owner", "_owner_name", "username")


def _owner_aces(row: OwnerName) -> list:
    owner = row.owner_name
    return [(Allow, user_principal(owner), READ + WRITE)] if owner else []


class Entity(LowerCaseName, OwnerName, Base):
    __tablename__ = "entity"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    custom_data: Mapped[str | None] = mapped_column(Text)
    default_private: Mapped[bool] = mapped_column(Boolean, default=False)
    owner_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("user.id", ondelete="SET NULL"), index=True)
    group_id: Mapped[int | None] = mapped_column(
        BigInt, ForeignKey("group.id", ondelete="CASCADE"), unique=True)
    used_quota: Mapped[int] = mapped_column(BigInt, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    owner: Mapped[User | None] = relationship()
    _owner_name: Mapped[str | None] = _name_of(User.username, owner_id)
    group: Mapped[Group | None] = relationship(back_populates="entity")
    _group_name: Mapped[str | None] = _name_of(Group.name, group_id)
    collections: Mapped[list["Collection"]] = relationship(
        back_populates="entity", cascade="all, delete-orphan", passive_deletes=True)

    @property
    def __name__(self):
        return self.name

    @property
    def __parent__(self):
        from ..resources import ROOT
        return ROOT

    def __acl__(self):
        acl = _owner_aces(self)
        group = _current_name(self, "group", "_group_name", "name")
        if group is not None:
            acl += [
                (Allow, group_principal(group, "admin"), READ + WRITE),
                (Allow, group_principal(group, "contributor"), READ + WRITE),
                (Allow, group_principal(group, "readonly"), READ),
            ]
        if self.name == "default":
            # Everybody logged in may look around the shared `default` entity; pulls still
            # follow each container's privacy flag.
            acl.append((Allow, Authenticated, Permission.BROWSE))
        return acl

    def __getitem__(self, name):
        for collection in self.collections:
            if collection.name == name.lower():
                return collection
        raise KeyError(name)


class Collection(LowerCaseName, OwnerName, Base):
    __tablename__ = "collection"
    __table_args__ = (UniqueConstraint("entity_id", "name"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    entity_id: Mapped[int] = mapped_column(BigInt, ForeignKey("entity.id", ondelete="CASCADE"), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    custom_data: Mapped[str | None] = mapped_column(Text)
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    owner_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("user.id", ondelete="SET NULL"), index=True)
    used_quota: Mapped[int] = mapped_column(BigInt, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    entity: Mapped[Entity] = relationship(back_populates="collections")
    owner: Mapped[User | None] = relationship()
    _owner_name: Mapped[str | None] = _name_of(User.username, owner_id)
    containers: Mapped[list["Container"]] = relationship(
        back_populates="collection", cascade="all, delete-orphan", passive_deletes=True)

    @property
    def __name__(self):
        return self.name

    @property
    def __parent__(self):
        return self.entity

    def __acl__(self):
        return _owner_aces(self)

    def __getitem__(self, name):
        for container in self.containers:
            if container.name == name.lower():
                return container
        raise KeyError(name)


class Container(LowerCaseName, OwnerName, Base):
    __tablename__ = "container"
    __table_args__ = (UniqueConstraint("collection_id", "name"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    collection_id: Mapped[int] = mapped_column(
        BigInt, ForeignKey("collection.id", ondelete="CASCADE"), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    full_description: Mapped[str | None] = mapped_column(Text)
    custom_data: Mapped[str | None] = mapped_column(Text)
    vcs_url: Mapped[str | None] = mapped_column(String(1024))
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    download_count: Mapped[int] = mapped_column(BigInt, default=0)
    latest_download: Mapped[datetime | None] = mapped_column(UTCDateTime)
    owner_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("user.id", ondelete="SET NULL"), index=True)
    used_quota: Mapped[int] = mapped_column(BigInt, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    collection: Mapped[Collection] = relationship(back_populates="containers")
    owner: Mapped[User | None] = relationship()
    _owner_name: Mapped[str | None] = _name_of(User.username, owner_id)
    images: Mapped[list["Image"]] = relationship(
        back_populates="container", cascade="all, delete-orphan", passive_deletes=True)
    tags: Mapped[list["Tag"]] = relationship(
        back_populates="container", cascade="all, delete-orphan", passive_deletes=True)
    manifests: Mapped[list["Manifest"]] = relationship(
        back_populates="container", cascade="all, delete-orphan", passive_deletes=True)

    @property
    def __name__(self):
        return self.name

    @property
    def __parent__(self):
        return self.collection

    @property
    def entity(self) -> Entity:
        return self.collection.entity

    @property
    def is_public(self) -> bool:
        return not self.private and not self.collection.private

    @property
    def path(self) -> str:
        """Full three-part name, as used in OCI `Location` headers and events."""
        return f"{self.collection.entity.name}/{self.collection.name}/{self.name}"

    def __acl__(self):
        acl = _owner_aces(self)
        if self.is_public:
            acl += [(Allow, Everyone, Permission.PULL), (Allow, Authenticated, Permission.OCI_PULL)]
        return acl


class Image(OwnerName, Base):
    """One blob in one container: a SIF image, an OCI layer or config, an ORAS file."""

    __tablename__ = "image"
    __table_args__ = (UniqueConstraint("container_id", "digest"), Index("ix_image_digest", "digest"))

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    container_id: Mapped[int] = mapped_column(BigInt, ForeignKey("container.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(String(80))   # "sha256:<hex>"
    size: Mapped[int | None] = mapped_column(BigInt)
    upload_state: Mapped[str] = mapped_column(String(16), default="initialized")
    media_type: Mapped[str] = mapped_column(String(255), default=SIF_MEDIA_TYPE)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    arch: Mapped[str | None] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(Text)
    custom_data: Mapped[str | None] = mapped_column(Text)
    blob: Mapped[str | None] = mapped_column(String(255))
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    signed: Mapped[bool] = mapped_column(Boolean, default=False)
    signature_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    fingerprints: Mapped[list | None] = mapped_column(JSON)
    sif_info: Mapped[dict | None] = mapped_column(JSON)
    scan: Mapped[dict | None] = mapped_column(JSON)   # results recorded by scanner plugins
    download_count: Mapped[int] = mapped_column(BigInt, default=0)
    latest_download: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    owner_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("user.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    container: Mapped[Container] = relationship(back_populates="images")
    owner: Mapped[User | None] = relationship()
    _owner_name: Mapped[str | None] = _name_of(User.username, owner_id)
    tags: Mapped[list["Tag"]] = relationship(back_populates="image", passive_deletes=True)

    @property
    def __parent__(self):
        return self.container

    @property
    def __name__(self):
        return self.hash

    @property
    def hash(self) -> str:
        """Library spelling of the digest: ``sha256.<hex>``."""
        return self.digest.replace(":", ".", 1)

    @property
    def is_sif(self) -> bool:
        return self.media_type == SIF_MEDIA_TYPE

    @property
    def completed(self) -> bool:
        return self.upload_state == "completed"


class Manifest(Base):
    """An OCI manifest or index, stored byte-exact (its digest is the sha256 of `content`)."""

    __tablename__ = "manifest"
    __table_args__ = (UniqueConstraint("container_id", "digest"), Index("ix_manifest_subject", "container_id", "subject"))

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    container_id: Mapped[int] = mapped_column(BigInt, ForeignKey("container.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(String(80))
    media_type: Mapped[str] = mapped_column(String(255))
    artifact_type: Mapped[str | None] = mapped_column(String(255))
    config_media_type: Mapped[str | None] = mapped_column(String(255))
    subject: Mapped[str | None] = mapped_column(String(80))
    annotations: Mapped[dict | None] = mapped_column(JSON)
    content: Mapped[bytes] = mapped_column(ManifestBytes)
    size: Mapped[int] = mapped_column(BigInt)
    generated: Mapped[bool] = mapped_column(Boolean, default=False)  # made by us for a library SIF
    download_count: Mapped[int] = mapped_column(BigInt, default=0)
    latest_download: Mapped[datetime | None] = mapped_column(UTCDateTime)
    owner_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    container: Mapped[Container] = relationship(back_populates="manifests")
    references: Mapped[list["ManifestReference"]] = relationship(
        back_populates="manifest", cascade="all, delete-orphan", passive_deletes=True)
    tags: Mapped[list["Tag"]] = relationship(back_populates="manifest", passive_deletes=True)

    @property
    def __parent__(self):
        return self.container


class ManifestReference(Base):
    """A blob (layer, config) or child manifest that a manifest needs; keeps GC honest."""

    __tablename__ = "manifest_reference"

    manifest_id: Mapped[int] = mapped_column(
        BigInt, ForeignKey("manifest.id", ondelete="CASCADE"), primary_key=True)
    digest: Mapped[str] = mapped_column(String(80), primary_key=True, index=True)
    kind: Mapped[str] = mapped_column(String(16), default="blob")   # "blob" or "manifest"
    media_type: Mapped[str | None] = mapped_column(String(255))

    manifest: Mapped[Manifest] = relationship(back_populates="references")


class Tag(Base):
    """A name in a container pointing at an image (library) and/or a manifest (OCI).

    `arch` is never NULL (untagged architectures use the default arch), so the unique
    constraint really makes duplicates impossible.
    """

    __tablename__ = "tag"
    __table_args__ = (UniqueConstraint("container_id", "name", "arch"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    container_id: Mapped[int] = mapped_column(BigInt, ForeignKey("container.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    arch: Mapped[str] = mapped_column(String(32))
    image_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("image.id", ondelete="CASCADE"), index=True)
    manifest_id: Mapped[int | None] = mapped_column(
        BigInt, ForeignKey("manifest.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    container: Mapped[Container] = relationship(back_populates="tags")
    image: Mapped[Image | None] = relationship(back_populates="tags")
    manifest: Mapped[Manifest | None] = relationship(back_populates="tags")


class Upload(Base):
    """An upload session (library single/multipart or OCI), kept in the database so that
    it survives a restart; its bytes live in the blob store's uploads folder."""

    __tablename__ = "upload"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))     # library-single, library-multipart, oci
    state: Mapped[str] = mapped_column(String(16), default="initialized")
    container_id: Mapped[int] = mapped_column(BigInt, ForeignKey("container.id", ondelete="CASCADE"), index=True)
    image_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("image.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("user.id", ondelete="CASCADE"))
    expected_digest: Mapped[str | None] = mapped_column(String(80))
    expected_size: Mapped[int | None] = mapped_column(BigInt)
    size: Mapped[int] = mapped_column(BigInt, default=0)   # bytes received so far
    part_size: Mapped[int | None] = mapped_column(BigInt)
    total_parts: Mapped[int | None] = mapped_column(BigInt)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    container: Mapped[Container] = relationship()
    image: Mapped[Image | None] = relationship()
    owner: Mapped[User | None] = relationship()
    parts: Mapped[list["UploadPart"]] = relationship(
        back_populates="upload", cascade="all, delete-orphan", passive_deletes=True,
        order_by="UploadPart.part_number")

    @property
    def __parent__(self):
        return self.container


class UploadPart(Base):
    __tablename__ = "upload_part"
    __table_args__ = (UniqueConstraint("upload_id", "part_number"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    upload_id: Mapped[str] = mapped_column(String(36), ForeignKey("upload.id", ondelete="CASCADE"))
    part_number: Mapped[int] = mapped_column(BigInt)
    expected_size: Mapped[int | None] = mapped_column(BigInt)
    expected_sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(BigInt)
    # What the part's PUT answered as ETag; the client names it again at completion.
    etag: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="initialized")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    upload: Mapped[Upload] = relationship(back_populates="parts")
