"""`hinkskalle user list|set|remove` and `hinkskalle group list|add|member`."""
from __future__ import annotations

from hinkskalle.models import Group, User


def test_user_commands(db, factory, ini, hinkskalle, testapp):
    factory.user("hase", password="alt")
    factory.user("igel")
    db.commit()
    path = ini()
    listed = hinkskalle(path, "user", "list").output
    assert "hase\thase@example.com\tlocal\t-\t0/unlimited" in listed
    hinkskalle(path, "user", "set", "HASE", "--admin", "--quota", "1GiB", "--password", "neu")
    db.expire_all()
    hase = db.query(User).filter_by(username="hase").one()
    assert hase.is_admin and hase.quota == 1024**3
    testapp.post_json("/v1/get-token", {"username": "hase", "password": "neu"})
    hinkskalle(path, "user", "set", "hase", "--inactive")
    testapp.post_json("/v1/get-token", {"username": "hase", "password": "neu"}, status=401)
    assert "admin,inactive" in hinkskalle(path, "user", "list").output
    result = hinkskalle(path, "user", "set", "hase", "--quota", "lots", code=2)
    assert "Traceback" not in result.output
    hinkskalle(path, "user", "set", "nobody", "--admin", code=1)
    hinkskalle(path, "user", "remove", "igel")
    hinkskalle(path, "user", "remove", "igel", code=1)
    db.expire_all()
    assert db.query(User).filter_by(username="igel").one_or_none() is None


def test_group_commands(db, factory, ini, hinkskalle):
    factory.user("hase")
    factory.user("igel")
    db.commit()
    path = ini(**{"hinkskalle.default_group_quota": "1MB"})
    assert "entity tolle-gruppe" in hinkskalle(path, "group", "add", "Tolle Gruppe", "--email", "g@example.com",
                                               "--admin", "hase").output
    hinkskalle(path, "group", "add", "Tolle Gruppe", "--email", "g@example.com", "--admin", "hase", code=1)
    hinkskalle(path, "group", "member", "Tolle Gruppe", "igel", "--role", "contributor")
    assert "Tolle Gruppe\ttolle-gruppe\t" in hinkskalle(path, "group", "list").output
    db.expire_all()
    group = db.query(Group).one()
    assert group.quota == 1000**2
    assert sorted((m.user.username, m.role) for m in group.memberships) == [("hase", "admin"), ("igel", "contributor")]
    # The last admin cannot go; after handing over, the old admin can.
    result = hinkskalle(path, "group", "member", "Tolle Gruppe", "hase", "--role", "none", code=1)
    assert "at least one admin" in result.output
    hinkskalle(path, "group", "member", "Tolle Gruppe", "igel", "--role", "admin")
    hinkskalle(path, "group", "member", "Tolle Gruppe", "hase", "--role", "none")
    hinkskalle(path, "group", "member", "Nope", "hase", "--role", "admin", code=1)
    hinkskalle(path, "group", "member", "Tolle Gruppe", "hase", "--role", "boss", code=2)
    db.expire_all()
    assert [(m.user.username, m.role) for m in db.query(Group).one().memberships] == [("igel", "admin")]
