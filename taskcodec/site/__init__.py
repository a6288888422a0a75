"""The boards as a static website (``taskcodec site``): an index, a page per board with a sortable and
filterable table, an interactive rate-quality chart, the BD table with intervals, provenance, model cards,
notes and the board's files to download. Works offline and from ``file://``."""
from .build import SiteReport, build_site

__all__ = ["SiteReport", "build_site"]
