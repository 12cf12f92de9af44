"""Values the database refuses are the client's mistake: 400 in the protocol's format, never a 500."""
import pytest
from sqlalchemy import select

from hinkskalle.models import Tag
from hinkskalle.plugins import hookimpl
from hinkskalle.security.permissions import Permission


class TagLookup:
    """Routes that hand a query parameter to the database unchecked, in both protocols."""

    @hookimpl
    def hinkskalle_configure(self, config):
        for protocol in ("library", "oci"):
            config.add_route(f"{protocol}._test.tags", f"/_test/{protocol}/tags")
            config.add_view(self.tags, route_name=f"{protocol}._test.tags", renderer="json",
                            permission=Permission.AUTHENTICATED)

    @staticmethod
    def tags(request):
        return [t.name for t in request.dbsession.scalars(select(Tag).where(Tag.arch == request.GET["arch"]))]


@pytest.fixture
def extra_plugins(recorder):
    return (recorder, TagLookup())


def test_nul_characters_are_400(testapp, factory, db, engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL refuses NUL characters in text")
    token = factory.token(factory.user())
    db.commit()
    headers = {"Authorization": f"Bearer {token}"}
    library = testapp.get("/_test/library/tags?arch=%00", headers=headers, status=400)
    assert library.json == {"message": "invalid value in the request"}
    oci = testapp.get("/_test/oci/tags?arch=%00", headers=headers, status=400)
    assert oci.json["errors"][0]["detail"] == "invalid value in the request"
