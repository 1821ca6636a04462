"""One day (``days.Day``) as a picture: PNG, or SVG on request.

Three panels sharing the time axis (00:00 to 24:00, pump time):

* glucose: meter BGs (BGReceived / CalBGForPH: dots; the wizard's BG: rings) on the left axis,
  sensor glucose (glucose pages) as a line on a second axis with the same scale;
* insulin: the basal step line actually delivered (U/h, left axis; temp and percent temps in
  their own colour, suspended/stopped at 0, unknown spans hatched and labelled, no-data spans
  grey), boluses on the right axis (U): a normal bolus a bar at its time, a square bolus (or
  the square half of a dual wave) a band over the time it was delivered, its height the units;
  carbs written above, in grams;
* events: alarms, primes, rewinds, suspends/resumes, clock changes, warnings.

The summary box under the panels is ``Day.summary_text()`` (pump's daily total, ours, the
difference).  matplotlib is imported inside ``draw`` (Agg backend): importing this module
costs nothing and works without matplotlib.
"""
import datetime
import os

from . import days as D

COLOURS = {D.SCHEDULED: "#1f77b4", D.TEMP: "#ff7f0e", D.PERCENT: "#d62728",
           D.SUSPENDED: "#7f7f7f", D.STOPPED: "#7f7f7f"}
EVENT_STYLE = {          # kind -> (marker, colour, row)
    "alarm": ("X", "#d62728", 5), "sensor alarm": ("x", "#e377c2", 4),
    "prime": ("^", "#1f77b4", 3), "rewind": ("v", "#9467bd", 2),
    "suspend": ("s", "#7f7f7f", 1), "resume": ("s", "#2ca02c", 1),
    "warning": ("d", "#bcbd22", 0), "clock": ("o", "#8c564b", 0),
}
ROWS = ["warning/clock", "suspend/resume", "rewind", "prime", "sensor alarm", "pump alarm"]


class MissingMatplotlib(ImportError):
    """matplotlib is not installed (the tool turns this into one line)."""


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.dates as mdates
    except ImportError as exc:
        raise MissingMatplotlib(str(exc))
    return plt, mdates


def draw(day, path, fmt=None):
    """Draw ``day`` into ``path`` (format from ``fmt`` or the suffix: png, svg). Returns path."""
    plt, mdates = _pyplot()
    fmt = fmt or (path.rsplit(".", 1)[-1].lower() if "." in path else "png")
    fig = plt.figure(figsize=(13, 9), dpi=100)
    grid = fig.add_gridspec(4, 1, height_ratios=[2.1, 3.3, 1.3, 1.0], hspace=0.14,
                            left=0.08, right=0.92, top=0.93, bottom=0.01)
    ax_g = fig.add_subplot(grid[0])
    ax_i = fig.add_subplot(grid[1], sharex=ax_g)
    ax_e = fig.add_subplot(grid[2], sharex=ax_g)
    ax_t = fig.add_subplot(grid[3])
    ax_t.axis("off")
    s = day.summary
    fig.suptitle("%s (%s), pump time -- decoded pump history%s" % (
        s["date"], day.start.strftime("%A"), "" if s["complete"] else "  [INCOMPLETE: see below]"),
        fontsize=13, fontweight="bold", color="black" if s["complete"] else "#b00000")
    _glucose(ax_g, day)
    _insulin(ax_i, day)
    _events(ax_e, day)
    for ax in (ax_g, ax_i, ax_e):
        ax.set_xlim(day.start, day.end)
        ax.grid(True, axis="x", color="#dddddd", linewidth=0.6)
        ax.xaxis.set_major_locator(mdates.HourLocator(interval=2))
        ax.xaxis.set_minor_locator(mdates.HourLocator())
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    plt.setp(ax_g.get_xticklabels(), visible=False)
    plt.setp(ax_i.get_xticklabels(), visible=False)
    lines = day.summary_text() + ["note: " + n for n in s["notes"][:3]]
    ax_t.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", family="monospace", fontsize=9.5,
              transform=ax_t.transAxes,
              bbox={"boxstyle": "round", "facecolor": "#f7f7f7" if s["complete"] else "#fff0f0",
                    "edgecolor": "#999999"})
    tmp = "%s.partial" % path     # a picture under its final name is always whole
    try:
        fig.savefig(tmp, format=fmt)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        plt.close(fig)
    return path


def _glucose(ax, day):
    ax.set_ylabel("BG (mg/dL)")
    ax.set_ylim(0, 400)
    ax.axhspan(70, 180, color="#e8f5e9", zorder=0)
    ax2 = ax.twinx()
    ax2.set_ylim(0, 400)
    ax2.set_ylabel("sensor glucose (mg/dL)", color="#2ca02c")
    if day.sensor:
        ax2.plot([p["time"] for p in day.sensor], [p["sgv"] for p in day.sensor], "-",
                 color="#2ca02c", linewidth=1.3, label="sensor glucose")
    meters = [b for b in day.bgs if b["source"] in D.METER_TYPES or b["source"] == "CalBGForGH"]
    wizard = [b for b in day.bgs if b["source"] not in D.METER_TYPES and b["source"] != "CalBGForGH"]
    if meters:
        ax.plot([b["time"] for b in meters], [b["bg"] for b in meters], "o", color="#d62728",
                markersize=5, label="meter BG")
    if wizard:
        ax.plot([b["time"] for b in wizard], [_mgdl(b) for b in wizard], "o", mfc="none",
                color="black", markersize=9, label="bolus wizard BG")
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    if handles:
        ax.legend(handles=handles, loc="upper right", fontsize=8, ncol=3)
    missing = [what for what, have in (("meter/wizard BG", day.bgs), ("sensor glucose", day.sensor))
               if not have]
    if missing:
        ax.text(0.01, 0.92, "no %s in the data" % " and no ".join(missing), transform=ax.transAxes,
                ha="left", va="top", color="#888888", fontsize=8)


def _num(units):
    return ("%.3f" % units).rstrip("0").rstrip(".")


def _mgdl(bg):
    return bg["bg"] * 18.0 if bg.get("units") == "mmol" else bg["bg"]


def _insulin(ax, day):
    ax.set_ylabel("basal delivered (U/h)")
    top_rate = max([s.rate for s in day.segments if s.rate is not None] + [1.0])
    ymax = top_rate * 1.6
    ax.set_ylim(0, ymax)
    seen = set()
    for seg in day.segments:
        if seg.rate is None:
            grey = seg.source == D.NO_DATA
            ax.axvspan(seg.start, seg.end, ymax=0.55, facecolor="#eeeeee" if grey else "#fff3cd",
                       hatch=None if grey else "///", edgecolor="#cccccc" if grey else "#d9a400",
                       linewidth=0, zorder=0)
            if seg.hours >= 1.2:
                mid = seg.start + (seg.end - seg.start) / 2
                ax.text(mid, ymax * 0.28, "no data" if grey else "basal unknown\n(%s)" % seg.source,
                        ha="center", va="center", fontsize=8, color="#666666" if grey else "#8a6d00")
            continue
        colour = COLOURS.get(seg.source, "#1f77b4")
        label = None if seg.source in seen else seg.source
        seen.add(seg.source)
        ax.fill_between([seg.start, seg.end], [seg.rate, seg.rate], step="post", color=colour,
                        alpha=0.25, linewidth=0, label=None)
        ax.plot([seg.start, seg.end], [seg.rate, seg.rate], "-", color=colour, linewidth=2,
                label=label, solid_capstyle="butt")
    # vertical joins of the step line where consecutive known segments meet
    for a, b in zip(day.segments, day.segments[1:]):
        if a.rate is not None and b.rate is not None and a.end == b.start:
            ax.plot([a.end, a.end], [a.rate, b.rate], "-", color="#555555", linewidth=0.8)
    ax2 = ax.twinx()
    ax2.set_ylabel("bolus (U)", color="#6a3d9a")
    top_bolus = max([b["amount"] for b in day.boluses] + [1.0])
    ax2.set_ylim(0, top_bolus * 1.35)
    width = datetime.timedelta(minutes=8)
    for b in day.boluses:
        if b["type"] == "normal":
            ax2.bar(b["time"], b["amount"], width=width, color="#6a3d9a", alpha=0.85, zorder=3)
            text = _num(b["amount"])
            if b["cancelled"]:
                text += "\n(of %s)" % _num(b["programmed"])
            ax2.text(b["time"], b["amount"], text, ha="center", va="bottom", fontsize=7,
                     color="#6a3d9a")
        else:
            start, end = max(b["start"], day.start), min(b["end"], day.end)
            ax2.fill_between([start, end], [b["amount"]] * 2, color="#cab2d6", alpha=0.6,
                             edgecolor="#6a3d9a", hatch="..", zorder=2)
            part = "" if abs(b["in_day"] - b["amount"]) < 1e-9 else ", %.2f U this day" % b["in_day"]
            ax2.text(start, b["amount"], "square %s U%s / %d min%s" % (
                _num(b["amount"]), " (of %s)" % _num(b["programmed"]) if b["cancelled"] else "",
                b["duration"], part), ha="left", va="bottom", fontsize=7, color="#6a3d9a")
    last, level = None, 0
    for c in day.carbs:         # labels close in time are stacked, not overprinted
        level = level + 1 if last is not None and c["time"] - last < datetime.timedelta(minutes=50) else 0
        last = c["time"]
        ax2.annotate("%s g" % c["carbs"], (c["time"], top_bolus * (1.25 - 0.07 * (level % 3))),
                     ha="center", fontsize=8, color="#8c564b", fontweight="bold")
    handles, labels = ax.get_legend_handles_labels()
    from matplotlib.patches import Patch
    handles += [Patch(color="#6a3d9a", label="bolus (U)"), Patch(color="#cab2d6", label="square bolus")]
    if day.carbs:
        handles.append(Patch(color="#8c564b", label="carbs (g, wizard)"))
    ax.legend(handles=handles, loc="upper left", fontsize=8, ncol=4)


def _events(ax, day):
    ax.set_ylim(-0.7, len(ROWS) - 0.3)
    ax.set_yticks(range(len(ROWS)))
    ax.set_yticklabels(ROWS, fontsize=8)
    for seg in day.segments:
        if seg.source in (D.SUSPENDED, D.STOPPED):
            ax.axvspan(seg.start, seg.end, color="#dddddd", zorder=0)
    for e in day.events:
        marker, colour, row = EVENT_STYLE.get(e["kind"], ("o", "black", 0))
        ax.plot([e["time"]], [row], marker, color=colour, markersize=7)
    prime_rows = [e for e in day.events if e["kind"] == "prime"]
    for e in prime_rows:
        ax.annotate("%.1f U" % e["amount"], (e["time"], EVENT_STYLE["prime"][2]),
                    textcoords="offset points", xytext=(4, 3), fontsize=7, color="#1f77b4")
    if not day.events:
        ax.text(0.5, 0.5, "no alarms, primes, rewinds or suspends", transform=ax.transAxes,
                ha="center", color="#888888", fontsize=8)
