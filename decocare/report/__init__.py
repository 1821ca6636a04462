"""One picture per day of decoded pump history (``mm-report.py``).

``days`` computes, from decocare-shaped records alone, what each day delivered: the basal step
line (scheduled, temp, percent temp, suspended, stopped, unknown), the boluses (square and
dual-wave parts spread over their duration), carbs, BGs, sensor glucose, events, and a summary
set beside the pump's own daily total.  ``draw`` turns one day into a PNG/SVG with matplotlib,
imported only when a picture is drawn.  No argument parsing here (that is ``tools/report.py``).
"""
