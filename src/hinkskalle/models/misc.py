"""Small tables: the built-in keyserver's public keys and admin key/value records."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .meta import Base, BigInt, UTCDateTime, utcnow


class PublicKey(Base):
    __tablename__ = "public_key"

    fingerprint: Mapped[str] = mapped_column(String(40), primary_key=True)  # upper-case hex
    key_id: Mapped[str] = mapped_column(String(16), index=True)             # last 16 hex digits
    armored: Mapped[str] = mapped_column(Text)
    uids: Mapped[list] = mapped_column(JSON, default=list)
    algorithm: Mapped[int] = mapped_column(Integer, default=0)
    bits: Mapped[int] = mapped_column(Integer, default=0)
    key_created: Mapped[datetime | None] = mapped_column(UTCDateTime)
    key_expires: Mapped[datetime | None] = mapped_column(UTCDateTime)
    owner_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Adm(Base):
    """Results of maintenance jobs (ldap sync, quota check, expiry), as the REST API shows them."""

    __tablename__ = "adm"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    val: Mapped[dict] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
