"""Console entry points (setup.py) for the tools whose module offers only ``main(argv)``: each
runs it under ``cli.run`` (one-line errors, exit codes) exactly as its bin/ script does."""
from ..cli import run


def mm_decode_history_page():
    from .history_cli import decode_page_main
    run(decode_page_main, prog="mm-decode-history-page.py")


def decocare_emulator():
    from ..emulator.__main__ import main
    run(main, prog="decocare-emulator")
