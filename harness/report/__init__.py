"""`harness report`: build.py reads a results folder into a Report (tidy frames, per-suite
sections), page.py chooses what the page shows, render.py writes html, Markdown, csv or json,
publish.py keeps the repository's published reports. The other modules compute the numbers."""
