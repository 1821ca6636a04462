"""python -m decocare.session PORT SERIAL: open a session with the pump -- wake it only if it
is not listening (PowerControl takes ~17 s) -- and print its model."""
from . import options


def main(argv=None):
    p = options.parser("python -m decocare.session", __doc__, positionals=True, wake=False)
    args = options.parse(p, argv)
    with options.open_args(args, recall=False) as pump:    # its one job: the pump answers
        print("model: %s" % pump.model)
    return 0
