"""pyserial URL handlers of our own: ``emulator://`` (the built-in stick + pump) and
``replay://`` (a recorded USB transcript). ``decocare.link`` registers this package with
``serial.protocol_handler_packages`` so every tool reaches them through ``--port``.
"""
