"""decocare: audit and command Medtronic MiniMed Paradigm pumps through the CareLink USB stick.

Layers (each imports only the ones below it):
  lib, errors, models  ->  link  ->  stick  ->  session  ->  commands, history, cgm  ->  tools
The emulated stick + pump (decocare.emulator) shares lib, models and the protocol tables
but never the client code, so a client bug cannot be mirrored by the emulator.
"""
__version__ = "0.1.0"
