"""Every command line decocare has, in one table, and the one way each is started.

The installed console scripts (setup.py reads ``TOOLS`` from this file), the scripts in ``bin/``
and at the top of the checkout, and ``python -m decocare.X`` all come through ``launch(name)``:
the tool's module is imported only then (a tool starts fast), and ``run`` turns a typed error
into one line on stderr and its exit code, SIGTERM into the same interrupt as Ctrl-C, and a
broken pipe into a quiet exit.  This file imports nothing from decocare at module level, so
setup.py can read the table without importing the package.
"""
import os
import signal
import sys

# (name, "module:function", what it is for).  The names are what users type.
TOOLS = (
    ("mm-send-comm.py", "decocare.tools.send_comm:main", "one read, by name or opcode"),
    ("mm-latest.py", "decocare.tools.latest:main", "state now and the history of the last minutes"),
    ("mm-pages.py", "decocare.tools.pages:pages_main", "history pages FIRST..LAST as JSON"),
    ("mm-history.py", "decocare.tools.pages:history_main", "the whole history as one JSON list"),
    ("mm-glucose.py", "decocare.tools.pages:glucose_main", "glucose (CGM) pages as JSON"),
    ("mm-openaps.py", "decocare.tools.openaps:main", "every file an OpenAPS rig needs, in one session"),
    ("mm-temp-basals.py", "decocare.tools.writes:temp_basals_main", "query, set or cancel a temp basal"),
    ("mm-bolus.py", "decocare.tools.writes:bolus_main", "deliver a bolus"),
    ("mm-set-suspend.py", "decocare.tools.writes:set_suspend_main", "suspend or resume delivery"),
    ("mm-set-rtc.py", "decocare.tools.writes:set_rtc_main", "query or set the pump clock"),
    ("mm-press-key.py", "decocare.tools.writes:press_key_main", "press pump keys"),
    ("mm-select-profile.py", "decocare.tools.writes:select_profile_main", "select basal profile"),
    ("mm-export.py", "decocare.tools.export:main", "history as CareLink CSV or Nightscout documents"),
    ("mm-report.py", "decocare.tools.report:main", "one picture per day: basal, boluses, carbs, BG"),
    ("mm-decode-history-page.py", "decocare.tools.history_cli:decode_page_main", "decode one saved page"),
    ("list_history.py", "decocare.tools.history_cli:list_history_main", "decode saved pages"),
    ("list_opcodes.py", "decocare.tools.history_cli:list_opcodes_main", "the history record table"),
    ("list_dates.py", "decocare.tools.history_cli:list_dates_main", "every record's date of saved pages"),
    ("decocare-emulator", "decocare.tools.emulator:main", "serve the emulated stick + pump on a pty"),
    ("decocare.stick", "decocare.tools.stick:main", "the stick alone: product info, signal, counters"),
    ("decocare.session", "decocare.tools.session:main", "wake the pump if needed, print its model"),
    ("decocare.commands", "decocare.tools.commands:main", "every read the model supports"),
    ("decocare.download", "decocare.tools.download:main", "every page to files, with a manifest"),
    ("decocare.replay", "decocare.tools.replay:main", "check a USB transcript with the codec"),
    ("decocare.scan", "decocare.tools.scan:main", "find the stick's port"),
    ("decocare.explain", "decocare.tools.explain:main", "logs/explain.log from a status-quo run"),
    ("decocare.tools.docs", "decocare.tools.docs:main", "write the generated docs"),
    ("decocare.emulator", "decocare.tools.emulator:main", "python -m decocare.emulator"),
)
TARGETS = {name: target for name, target, _ in TOOLS}
INSTALLED = tuple(name for name, _, _ in TOOLS if not name.startswith("decocare."))

class Interrupted(KeyboardInterrupt):
    """SIGTERM, handled exactly like Ctrl-C (a write tool then says whether anything was sent)."""


def _terminate(signum, frame):
    raise Interrupted("SIGTERM")


def prog_name(name):
    return "python -m " + name if name.startswith("decocare.") else name


def _catch_sigterm():
    try:
        signal.signal(signal.SIGTERM, _terminate)
    except ValueError:                  # not the main thread (tests): keep the default
        pass


def run(main, argv=None, prog=None):
    """Call ``main(argv)`` and exit with its return code; a DecocareError becomes one line on
    stderr and its exit code, Ctrl-C / SIGTERM exit 130, a broken pipe exits quietly."""
    from ..errors import DecocareError
    prog = prog or os.path.basename(sys.argv[0])
    _catch_sigterm()
    try:
        code = main(argv)
    except DecocareError as exc:
        print("%s: %s" % (prog, exc), file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        from ..errors import EXIT_INTERRUPTED
        print("%s: interrupted" % prog, file=sys.stderr)
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        code = 0
    sys.exit(code or 0)


def resolve(name):
    """The function behind tool ``name``."""
    import importlib
    module, _, function = TARGETS[name].partition(":")
    return getattr(importlib.import_module(module), function)


def launch(name, argv=None):
    """Run tool ``name`` as a command line (bin/ scripts, console scripts, ``python -m``).  An
    interrupt while the tool is still being imported is one line too (nothing was sent yet)."""
    prog = prog_name(name)
    _catch_sigterm()
    try:
        main = resolve(name)
    except KeyboardInterrupt:
        print("%s: interrupted before it started: nothing was sent" % prog, file=sys.stderr)
        sys.exit(130)
    run(main, argv, prog=prog)


def _entry(name):
    def entry():
        launch(name)
    entry.__name__ = entry.__qualname__ = entry_name(name)
    entry.__doc__ = "Console script %s (decocare.tools.registry)." % name
    return entry


def entry_name(name):
    """The attribute a console script points at: ``mm-bolus.py`` -> ``mm_bolus_py``."""
    return name.replace("-", "_").replace(".", "_")


for _name in INSTALLED:
    globals()[entry_name(_name)] = _entry(_name)
