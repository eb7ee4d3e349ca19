"""paasta_lite: a small, sharp re-implementation of the classic PaaSTA workflow."""

__version__ = "0.1.0"
