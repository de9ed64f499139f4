"""Work off the GUI thread: one-shot calls on the pool, long streams on their own threads."""
