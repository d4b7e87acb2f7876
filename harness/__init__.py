"""sip-harness: prove with real SIP that a bring-your-own-number configuration works."""

__version__ = "0.1.0"

__all__ = ["__version__"]
