"""Library downloads are cheap: a parallel pull sends one request per range, and each finds
its image with the container and its parents in two SELECTs and writes nothing."""
import gc

import pytest

from hinkskalle.testing import selects_and_writes, statements

from .test_images import image  # noqa: F401 - the fixture

CLI = {"User-Agent": "apptainer/1.4.0 (Linux x86_64) Go/1.23"}


def _run(testapp, engine, url, **kw):
    gc.collect()       # what a request leaves unreferenced is gone before the next one
    with statements(engine) as seen:
        response = testapp.get(url, **kw)
    return response, seen


@pytest.mark.usefixtures("image")
def test_a_range_of_a_signed_download_is_two_selects(testapp, engine):
    location = testapp.get("/v1/imagefile/user.hase/coll/cont:latest", headers=CLI, status=303).headers["Location"]
    path = location.replace("http://localhost", "")
    for first, last in ((0, 99), (100, 199)):
        response, seen = _run(testapp, engine, path, headers={"Range": f"bytes={first}-{last}"}, status=206)
        assert len(response.body) == last - first + 1
        selects, writes = selects_and_writes(seen)
        assert len(selects) <= 2 and not writes, seen


@pytest.mark.usefixtures("image")
def test_an_image_pulled_by_tag_walks_its_acl_without_more_queries(testapp, users, engine):
    """The ACL walk (image, container, collection, entity) and the response use the rows the
    container's lookup loaded."""
    response, seen = _run(testapp, engine, "/v1/imagefile/user.hase/coll/cont:latest",
                          headers={"Range": "bytes=10-19"}, status=206)
    selects, writes = selects_and_writes(seen)
    assert len(selects) <= 2 and not writes, seen      # container with the tag, image
