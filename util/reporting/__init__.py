"""The report next to the paper: its sections, figures, Markdown helpers and the paper's numbers."""
