"""The macOS package: Dockyard.app in a .dmg (build.py)."""
