#!/usr/bin/env python3
"""list_opcodes.py: see --help. A thin script over decocare.tools.history_cli.list_opcodes_main."""
from decocare.tools.history_cli import list_opcodes_main, script

if __name__ == "__main__":
    script(list_opcodes_main)
