"""What every command writes besides its results: files written atomically, and their provenance."""
