"""decocare: audit and command Medtronic MiniMed Paradigm pumps through the CareLink USB stick.

Layers (each module imports only its own layer and those below; tests/test_layers.py checks it):
  errors, lib, models, vocabulary, pages, frames  ->  link  ->  stick  ->  session  ->
  commands, history, cgm  ->  connect, download, dosing, scan, explain, replay, emulator  ->
  urlhandler  ->  tools (every command line)
The emulated stick + pump (decocare.emulator) shares the codec and the protocol tables but never
the client code, so a client bug cannot be mirrored by the emulator.  docs/ARCHITECTURE.md.
"""
__version__ = "0.1.0"
