#!/usr/bin/env python3
"""list_history.py: see --help. A thin script over decocare.tools.history_cli.list_history_main."""
from decocare.tools.history_cli import list_history_main, script

if __name__ == "__main__":
    script(list_history_main)
