"""Qt item models over Engine API data, updated incrementally from events."""
