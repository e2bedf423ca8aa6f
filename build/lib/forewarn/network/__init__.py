"""Topology and premises: import, index, geocode, and which premises a fault reaches."""

from forewarn.network.importer import ImportReport, import_network
from forewarn.network.index import NetworkIndex

__all__ = ["ImportReport", "NetworkIndex", "import_network"]
