"""SIF parsing and signature checks (filled in by the library protocol work)."""
from __future__ import annotations


def annotate_image(request, image, path: str) -> None:
    """Record arch, definition file, labels and signatures of the SIF at `path` on `image`."""
    return None
