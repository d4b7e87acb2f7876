"""sip-harness: prove with real SIP that a bring-your-own-number configuration works."""

from harness import accel as _accel

__version__ = "0.1.0"

__all__ = ["__version__"]

# Before any other harness module is imported: the compiled modules, when a current
# build exists (see harness.accel), replace the pure-Python ones.
_accel.install()
