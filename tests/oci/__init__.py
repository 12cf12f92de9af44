"""OCI distribution-spec tests."""
