#!/usr/bin/env python3
"""list_dates.py: see --help. A thin script over decocare.tools.history_cli.list_dates_main."""
from decocare.tools.history_cli import list_dates_main, script

if __name__ == "__main__":
    script(list_dates_main)
