"""Accounts, groups, memberships, API tokens and stars."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, ForeignKey, String, Table, UniqueConstraint, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .meta import Base, BigInt, UTCDateTime, utcnow

ROLES = ("admin", "contributor", "readonly")

user_stars = Table(
    "user_star",
    Base.metadata,
    Column("user_id", BigInt, ForeignKey("user.id", ondelete="CASCADE"), primary_key=True),
    Column("container_id", BigInt, ForeignKey("container.id", ondelete="CASCADE"), primary_key=True),
)


class User(Base):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    firstname: Mapped[str] = mapped_column(String(255), default="")
    lastname: Mapped[str] = mapped_column(String(255), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(32), default="local")
    quota: Mapped[int] = mapped_column(BigInt, default=0)
    used_quota: Mapped[int] = mapped_column(BigInt, default=0)
    created_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    memberships: Mapped[list["Membership"]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True)
    tokens: Mapped[list["Token"]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True)
    starred = relationship("Container", secondary=user_stars, passive_deletes=True)

    def __repr__(self):
        return f"<User {self.username}>"


class Group(Base):
    __tablename__ = "group"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    email: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str | None] = mapped_column(Text)
    quota: Mapped[int] = mapped_column(BigInt, default=0)
    created_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    memberships: Mapped[list["Membership"]] = relationship(
        back_populates="group", cascade="all, delete-orphan", passive_deletes=True)
    entity = relationship("Entity", back_populates="group", uselist=False)


class Membership(Base):
    __tablename__ = "membership"

    user_id: Mapped[int] = mapped_column(BigInt, ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    group_id: Mapped[int] = mapped_column(BigInt, ForeignKey("group.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), default="readonly")

    user: Mapped[User] = relationship(back_populates="memberships")
    group: Mapped[Group] = relationship(back_populates="memberships")


class Token(Base):
    """An API token. Only a sha256 of the secret is stored: tokens are 48 random bytes,
    so a fast hash is as safe as a slow one and keeps every request cheap."""

    __tablename__ = "token"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInt, ForeignKey("user.id", ondelete="CASCADE"), index=True)
    key_uid: Mapped[str] = mapped_column(String(12), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    comment: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16), default="manual")
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="tokens")
