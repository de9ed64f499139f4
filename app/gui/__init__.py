"""Dockyard's desktop app: a Qt client of the Docker Engine API (see app/gui/app.py)."""
