"""forewarn: tell customers about a network outage before they have to ask."""

__version__ = "0.1.0"
