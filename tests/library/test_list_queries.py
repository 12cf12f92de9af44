"""List endpoints load per-container data in batches: their query count does not grow with
the number of containers or images listed (no N+1 queries)."""
import pytest

from hinkskalle.testing import statements

from .conftest import add_image

URLS = ["/v1/search?value=c", "/v1/latest", "/v1/containers/user.hase/coll", "/v1/users/user.hase/stars"]


def _queries(testapp, engine, url, headers) -> int:
    with statements(engine) as seen:
        testapp.get(url, headers=headers)
    return len(seen)


@pytest.mark.parametrize("url", URLS)
def test_list_query_count_is_independent_of_size(testapp, users, factory, db, store, engine, url):
    headers = users["headers"]["user"]
    counts = []
    for start, end in ((0, 2), (2, 12)):
        for i in range(start, end):
            container = factory.container(f"user.hase/coll/c{i}", owner=users["user"])
            add_image(store, db, container, b"x%d" % i)
            add_image(store, db, container, b"y%d" % i, tag="v1")
            users["user"].starred.append(container)
        db.commit()
        counts.append(_queries(testapp, engine, url, headers))
    assert counts[0] == counts[1]


def test_entity_and_collection_lists_query_count_is_independent_of_size(testapp, users, factory, db, engine):
    headers = users["headers"]["admin"]
    counts = []
    for start, end in ((0, 2), (2, 12)):
        for i in range(start, end):
            owner = factory.user(f"u{i}")
            factory.container(f"u{i}/coll/c", owner=owner)
            factory.container(f"user.hase/coll{i}/c", owner=users["user"])
        db.commit()
        counts.append([_queries(testapp, engine, url, headers)
                       for url in ("/v1/entities", "/v1/collections/user.hase", "/v1/search?value=u")])
    assert counts[0] == counts[1]


@pytest.mark.parametrize("url", ["/v1/users", "/v1/groups"])
def test_user_and_group_lists_query_count_is_independent_of_size(testapp, users, factory, db, engine, url):
    """user_json and group_json read memberships, groups, entities and collections."""
    counts = []
    for start, end in ((0, 2), (2, 12)):
        for i in range(start, end):
            factory.group(f"g{i}", members={factory.user(f"u{i}"): "admin", users["user"]: "readonly"})
        db.commit()
        counts.append(_queries(testapp, engine, url, users["headers"]["admin"]))
    assert counts[0] == counts[1]
