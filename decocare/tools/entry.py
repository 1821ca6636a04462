"""Console entry points (setup.py) for tools whose ``main(argv)`` lives in another module: each
runs it under ``cli.run`` (one-line errors, exit codes) exactly as its bin/ script does."""
import importlib

from ..cli import run


def _run(module, name, prog):
    run(getattr(importlib.import_module(module), name), prog=prog)


def mm_temp_basals():
    _run("decocare.dosing", "temp_basals_main", "mm-temp-basals.py")


def mm_bolus():
    _run("decocare.dosing", "bolus_main", "mm-bolus.py")


def mm_set_suspend():
    _run("decocare.dosing", "set_suspend_main", "mm-set-suspend.py")


def mm_set_rtc():
    _run("decocare.dosing", "set_rtc_main", "mm-set-rtc.py")


def mm_press_key():
    _run("decocare.dosing", "press_key_main", "mm-press-key.py")


def mm_select_profile():
    _run("decocare.dosing", "select_profile_main", "mm-select-profile.py")


def mm_decode_history_page():
    _run("decocare.tools.history_cli", "decode_page_main", "mm-decode-history-page.py")


def decocare_emulator():
    _run("decocare.emulator.__main__", "main", "decocare-emulator")
