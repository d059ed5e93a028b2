"""Reports: the published manifest, and (later) matrix tables and release documents."""
