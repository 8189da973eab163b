"""A run's lifecycle outside its own process: who executes it, and what happens when it dies."""
