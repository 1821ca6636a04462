#!/usr/bin/env python3
"""mm-history.py: see `mm-history.py --help` (the tool lives in decocare.tools.pages)."""
from decocare.tools.pages import cli_history

if __name__ == "__main__":
    cli_history()
