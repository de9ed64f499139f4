"""One module per sidebar entry; each defines a Page subclass (see base.py)."""
