"""Topology and premises: import, index, geocode, and which premises a fault reaches."""

from forewarn.network.importer import import_network
from forewarn.network.index import NetworkIndex
from forewarn.network.rows import ImportReport

__all__ = ["ImportReport", "NetworkIndex", "import_network"]
