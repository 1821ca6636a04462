#!/usr/bin/env python3
"""mm-pages.py: see `mm-pages.py --help` (the tool lives in decocare.tools.pages)."""
from decocare.tools.pages import cli_pages

if __name__ == "__main__":
    cli_pages()
