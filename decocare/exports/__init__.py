"""Decoded history in the shapes other programs read: CareLink's CSV export (``carelink_csv``)
and Nightscout's treatments and entries (``nightscout``).  Pure conversions of decocare-shaped
records (plus the Nightscout upload); no argument parsing (that is ``tools/export.py``)."""
