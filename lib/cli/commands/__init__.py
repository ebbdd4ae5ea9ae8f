"""The commands of `python -m lib`, one module each (see lib/cli/__init__.py for what a module defines)."""
