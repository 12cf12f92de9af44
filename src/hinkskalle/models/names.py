"""Name rules (reference section 10) shared by models, schemas and views."""
from __future__ import annotations

import re
import unicodedata

_ALLOWED = re.compile(r"^[a-zA-Z0-9._-]+$")
_EDGES = re.compile(r"^[a-zA-Z0-9](.*[a-zA-Z0-9])?$")
# OCI path component (distribution-spec); stricter than library names.
OCI_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$")
OCI_TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
MAX_NAME = 128


class InvalidName(ValueError):
    pass


def check_name(name: str) -> str:
    """Validate a library name (entity, collection, container, username, tag); return it lower-cased."""
    if not isinstance(name, str) or not name:
        raise InvalidName("name must not be empty")
    if len(name) > MAX_NAME:
        raise InvalidName(f"name must be at most {MAX_NAME} characters")
    if not _ALLOWED.match(name):
        raise InvalidName("name contains invalid characters")
    if not _EDGES.match(name):
        raise InvalidName("name must start and end with a letter or number")
    return name.lower()


def is_valid_name(name: str) -> bool:
    try:
        check_name(name)
        return True
    except InvalidName:
        return False


def slugify(text: str, separator: str = "-") -> str:
    """Lower-case ASCII slug: ``Test h&sen ställ.`` -> ``test-h-sen-stall``."""
    text = text.replace("ß", "ss")
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", separator, ascii_text.lower()).strip(separator)
    return slug
