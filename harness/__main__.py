"""``python -m harness`` is ``sipharness``."""

from harness.cli import main

main()
