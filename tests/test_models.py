"""The data model on the real database: uniqueness, 64-bit sizes, UTC timestamps, names, cascades."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, StatementError

from hinkskalle.models import (Collection, Container, Entity, Group, Image, Manifest, ManifestReference,
                               Membership, Tag, Token, Upload, UploadPart, User)
from hinkskalle.models.meta import utcnow
from hinkskalle.models.names import InvalidName, check_name
from hinkskalle.testing import Factory

pytestmark = pytest.mark.db

TIB = 1024**4
DIGEST = "sha256:" + "a" * 64


@pytest.fixture
def make(dbsession):
    return Factory(dbsession)


def refused(session, *objects):
    """True when adding `objects` violates a constraint (the session stays usable)."""
    try:
        with session.begin_nested():
            session.add_all(objects)
            session.flush()
    except IntegrityError:
        return True
    return False


def test_unique_names(dbsession, make):
    hase = make.user("hase")
    cont = make.container("hase/coll/cont", owner=hase)
    coll, entity = cont.collection, cont.collection.entity
    assert refused(dbsession, User(username="hase", email="other@example.com"))
    assert refused(dbsession, User(username="igel", email="hase@example.com"))
    assert refused(dbsession, Entity(name="hase"))
    assert refused(dbsession, Collection(name="coll", entity_id=entity.id))
    assert refused(dbsession, Container(name="cont", collection_id=coll.id))
    assert refused(dbsession, Group(name=make.group("Hasen").name))
    assert not refused(dbsession, Collection(name="coll2", entity_id=entity.id))


def test_unique_images_manifests_tags(dbsession, make):
    cont = make.container("hase/coll/cont")
    other = make.container("hase/coll/other")
    dbsession.add(Image(container=cont, digest=DIGEST))
    dbsession.flush()
    assert refused(dbsession, Image(container_id=cont.id, digest=DIGEST))
    assert not refused(dbsession, Image(container_id=other.id, digest=DIGEST))   # same blob, other container
    manifest = dict(digest=DIGEST, media_type="application/vnd.oci.image.manifest.v1+json", content=b"{}", size=2)
    dbsession.add(Manifest(container=cont, **manifest))
    dbsession.flush()
    assert refused(dbsession, Manifest(container_id=cont.id, **manifest))
    dbsession.add(Tag(container=cont, name="latest", arch="amd64"))
    dbsession.flush()
    assert refused(dbsession, Tag(container_id=cont.id, name="latest", arch="amd64"))
    assert not refused(dbsession, Tag(container_id=cont.id, name="latest", arch="arm64"))


def test_tags_always_have_an_architecture(dbsession, make):
    """NULL would make (container, name, NULL) duplicates possible; the column refuses it."""
    cont = make.container("hase/coll/cont")
    assert refused(dbsession, Tag(container_id=cont.id, name="latest", arch=None))


def test_other_duplicates(dbsession, make):
    hase = make.user("hase")
    group = make.group("Hasen", members={hase: "readonly"})
    assert refused(dbsession, Membership(user_id=hase.id, group_id=group.id, role="admin"))
    dbsession.add(Token(user=hase, key_uid="k" * 12, secret_hash="0" * 64))
    dbsession.flush()
    assert refused(dbsession, Token(user_id=hase.id, key_uid="k" * 12, secret_hash="1" * 64))
    cont = make.container("hase/coll/cont")
    upload = Upload(id="u" * 36, kind="library-multipart", container=cont, expires_at=utcnow())
    dbsession.add(upload)
    dbsession.add(UploadPart(id="p" * 36, upload=upload, part_number=1))
    dbsession.flush()
    assert refused(dbsession, UploadPart(id="q" * 36, upload_id=upload.id, part_number=1))
    assert refused(dbsession, Entity(name="hasen2", group_id=group.id))   # one entity per group


def test_sizes_are_64_bit(dbsession, make):
    user = make.user("hase", quota=10 * TIB)
    cont = make.container("hase/coll/cont", owner=user)
    image = Image(container=cont, digest=DIGEST, size=5 * TIB)
    upload = Upload(id="u" * 36, kind="oci", container=cont, size=5 * TIB, expected_size=5 * TIB,
                    expires_at=utcnow())
    cont.used_quota = 5 * TIB
    dbsession.add_all([image, upload])
    dbsession.flush()
    dbsession.expire_all()
    assert dbsession.scalar(select(Image.size)) == 5 * TIB
    assert dbsession.scalar(select(Upload.expected_size)) == 5 * TIB
    assert dbsession.scalar(select(User.quota).where(User.username == "hase")) == 10 * TIB
    assert dbsession.scalar(select(func.sum(Image.size))) == 5 * TIB
    assert dbsession.get(Container, cont.id).used_quota == 5 * TIB


def test_timestamps_are_utc_and_timezone_aware(dbsession, make):
    cont = make.container("hase/coll/cont")
    berlin = timezone(timedelta(hours=2))
    moment = datetime(2030, 8, 5, 23, 47, 45, 480000, tzinfo=berlin)
    image = Image(container=cont, digest=DIGEST, expires_at=moment)
    dbsession.add(image)
    dbsession.flush()
    dbsession.expire_all()
    stored = dbsession.get(Image, image.id)
    assert stored.expires_at == moment                    # the same instant...
    assert stored.expires_at.utcoffset() == timedelta(0)  # ...read back in UTC
    assert stored.created_at.tzinfo is not None
    assert abs(stored.created_at - utcnow()) < timedelta(minutes=5)
    # Comparisons in SQL use UTC too.
    assert dbsession.scalar(select(Image.id).where(Image.expires_at > datetime(2030, 8, 5, 21, 47, 0,
                                                                             tzinfo=timezone.utc))) == image.id


def test_naive_datetimes_are_refused(dbsession, make):
    cont = make.container("hase/coll/cont")
    with pytest.raises(StatementError):
        with dbsession.begin_nested():
            dbsession.add(Image(container=cont, digest=DIGEST, expires_at=datetime(2030, 1, 1)))
            dbsession.flush()


@pytest.mark.parametrize("name", ["Babsi Streusand", "-oink", "_oink", ".oink", "Babsi&Streusand", "oink-",
                                  "oink.", "oink_", "test%%hase", "", "a" * 129, "tëst"])
def test_names_rejected(name):
    with pytest.raises(InvalidName):
        check_name(name)


@pytest.mark.parametrize("name, stored", [("test_hase", "test_hase"), ("test.hase", "test.hase"),
                                          ("test-hase", "test-hase"), ("Test.Hase", "test.hase"), ("t3st", "t3st"),
                                          ("123", "123"), ("Test-Kuh", "test-kuh"), ("a", "a")])
def test_names_accepted_and_lower_cased(name, stored):
    assert check_name(name) == stored


def test_name_messages():
    with pytest.raises(InvalidName, match="name contains invalid characters"):
        check_name("Babsi Streusand")
    with pytest.raises(InvalidName, match="name must start and end with a letter or number"):
        check_name("-oink")


def count(session, model):
    return session.scalar(select(func.count()).select_from(model))


def test_deleting_an_entity_removes_everything_below(dbsession, make):
    owner = make.user("hase")
    cont = make.container("hase/coll/cont", owner=owner)
    image = Image(container=cont, digest=DIGEST)
    manifest = Manifest(container=cont, digest=DIGEST, media_type="m", content=b"{}", size=2)
    manifest.references.append(ManifestReference(digest=DIGEST))
    upload = Upload(id="u" * 36, kind="oci", container=cont, expires_at=utcnow())
    dbsession.add_all([image, manifest, upload, Tag(container=cont, name="v1", arch="amd64", image=image),
                       Tag(container=cont, name="v2", arch="amd64", manifest=manifest)])
    dbsession.flush()
    owner.starred.append(cont)
    dbsession.flush()
    dbsession.delete(cont.collection.entity)
    dbsession.flush()
    dbsession.expire_all()
    for model in (Entity, Collection, Container, Image, Manifest, ManifestReference, Tag, Upload):
        assert count(dbsession, model) == 0, model
    assert dbsession.get(User, owner.id) is not None          # the owner stays
    assert dbsession.get(User, owner.id).starred == []


def test_database_cascades_without_the_orm(dbsession, make):
    """ON DELETE rules hold for plain SQL too (admin scripts, other tools)."""
    owner = make.user("hase")
    group = make.group("Hasen", members={owner: "admin"})
    make.token(owner)
    cont = make.container("hase/coll/cont", owner=owner)
    dbsession.add(Image(container=cont, digest=DIGEST, owner=owner))
    dbsession.flush()
    dbsession.execute(Entity.__table__.delete().where(Entity.name == "hase"))
    assert count(dbsession, Container) == 0 and count(dbsession, Image) == 0
    dbsession.execute(User.__table__.delete().where(User.id == owner.id))
    assert count(dbsession, Token) == 0 and count(dbsession, Membership) == 0
    assert dbsession.scalar(select(Entity.id).where(Entity.group_id == group.id)) is not None
    dbsession.execute(Group.__table__.delete().where(Group.id == group.id))
    assert count(dbsession, Entity) == 0


def test_deleting_a_user_keeps_their_images(dbsession, make):
    owner = make.user("hase")
    cont = make.container("default/coll/cont")
    image = Image(container=cont, digest=DIGEST, owner=owner)
    dbsession.add(image)
    dbsession.flush()
    dbsession.execute(User.__table__.delete().where(User.id == owner.id))
    dbsession.expire_all()
    assert dbsession.get(Image, image.id).owner_id is None
