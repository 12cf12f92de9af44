"""The catalog's SQL visibility filter equals the ACL decision; its keyset pages are complete."""
from __future__ import annotations

import itertools
import random
from urllib.parse import unquote

from pyramid.authorization import ACLHelper, Authenticated, Everyone

from hinkskalle.models import Container
from hinkskalle.security.permissions import ADMIN_PRINCIPAL, Permission, group_principal, user_principal

from .conftest import Client


def principals_of(user) -> list[str]:
    principals = [Everyone, Authenticated, user_principal(user.username)]
    if user.is_admin:
        principals.append(ADMIN_PRINCIPAL)
    return principals + [group_principal(m.group.name, m.role) for m in user.memberships]


def acl_visible(db, user) -> set[str]:
    acl, principals = ACLHelper(), principals_of(user)
    return {c.path for c in db.query(Container)
            if acl.permits(c, principals, Permission.OCI_PULL) or acl.permits(c, principals, Permission.BROWSE)}


def all_pages(client: Client, n: int) -> list[str]:
    """Follow the Link headers from the first page to the last."""
    names, url = [], f"/v2/_catalog?n={n}"
    while url:
        page = client.get(url)
        names += page.json["repositories"]
        link = page.headers.get("Link")
        url = unquote(link[1:link.index(">")]) if link else None
    return names


def generated_repositories(factory, db, accounts):
    """A few hundred containers mixing every rule: owners at each level, privacy flags on
    containers and collections, a group entity, the shared `default` entity, and names
    where one component is a prefix of another (`a`, `a-b`, `a.b`)."""
    hase, igel = accounts["hase"][0], accounts["igel"][0]
    maus = factory.user("maus", password="geheim")
    factory.group("herde", members={igel: "readonly", maus: "contributor"})
    rnd = random.Random(7)
    owners = [None, hase, igel, maus]
    entities = ["hase", "igel", "herde", "default", "a", "a-b", "a.b"]
    for n, (entity, collection) in enumerate(itertools.product(entities, ["a", "a-b", "coll", "z_z"])):
        for name in ("a", "a-b", "a.b", "img", f"c{n}", "x", "y0", "y1", "y2", "zz"):
            factory.container(f"{entity}/{collection}/{name}", owner=rnd.choice(owners),
                              private=rnd.random() < 0.4, collection_private=rnd.random() < 0.3)
    db.commit()
    return {"hase": hase, "igel": igel, "maus": maus, "admin": accounts["admin"][0]}


def test_catalog_equals_acl_and_pages_are_complete(testapp, factory, db, accounts):
    users = generated_repositories(factory, db, accounts)
    tokens = {name: accounts[name][1] for name in ("hase", "igel", "admin")}
    tokens["maus"] = factory.token(users["maus"])
    db.commit()
    assert db.query(Container).count() == 280
    for name, user in users.items():
        client = Client(testapp, tokens[name])
        expected = acl_visible(db, user)
        assert 0 < len(expected) <= 280
        whole = client.get("/v2/_catalog").json["repositories"]
        assert set(whole) == expected, name
        for n in (1, 7, 100):
            pages = all_pages(client, n)
            assert pages == whole, (name, n)     # every repository once, same order
    assert len(acl_visible(db, users["admin"])) == 280


def test_catalog_page_after_any_last(hase, factory, db):
    for path in ("hase/a/a", "hase/a/a-b", "hase/a-b/a", "hase/b/c"):
        factory.container(path)
    db.commit()
    whole = hase.get("/v2/_catalog").json["repositories"]
    assert len(whole) == 4
    for i, last in enumerate(whole):
        assert hase.get(f"/v2/_catalog?last={last}").json["repositories"] == whole[i + 1:]
    assert hase.get("/v2/_catalog?last=hase").json["repositories"] == whole
    assert hase.get("/v2/_catalog?last=hase/a").json["repositories"] == whole
    assert hase.get("/v2/_catalog?n=0").json["repositories"] == []
