"""Text that is not split by spaces: units (words or CJK characters), Chinese script, scoring.

Pure, light modules: :mod:`.units` (no imports beyond ``re``) is used by the core;
:mod:`.chinese` imports OpenCC only when a conversion runs; :mod:`.metrics` is for tests
and benchmarks.
"""
