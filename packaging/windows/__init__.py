"""The Windows package: an Inno Setup installer (build.py)."""
