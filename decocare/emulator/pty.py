"""Serve the emulated stick on a pseudo-terminal, so any process opens it like /dev/ttyUSB0."""
import os
import select
import threading
import tty


class PtyServer:
    """A pty pair and a thread moving host writes into the stick and its answers back out."""

    def __init__(self, stick, link=None):
        self.stick = stick
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.link = link
        if link:
            if os.path.islink(link):
                os.unlink(link)
            os.symlink(self.path, link)
        self.port = link or self.path
        self._wake_r, self._wake_w = os.pipe()
        self._stop = threading.Event()
        self.error = None               # why serving stopped, if it ever did on its own
        self._thread = threading.Thread(target=self._serve, name="emulator-pty", daemon=True)
        self._thread.start()

    def _serve(self):
        try:
            self._run()
        except Exception as exc:        # reported by the CLI, which then ends the process
            self.error = "%s: %s" % (type(exc).__name__, exc)

    def _run(self):
        while not self._stop.is_set():
            wait = self.stick.next_release()
            ready, _, _ = select.select([self.master, self._wake_r], [], [],
                                       0.2 if wait is None else min(wait, 0.2))
            if self.master in ready:
                try:
                    data = os.read(self.master, 4096)
                except OSError:
                    data = b""
                if data:
                    self.stick.write(data)
            out = self.stick.take_ready()
            if out:
                os.write(self.master, out)

    def stop(self):
        self._stop.set()
        os.write(self._wake_w, b"x")
        self._thread.join(2)
        for fd in (self.master, self.slave, self._wake_r, self._wake_w):
            os.close(fd)
        if self.link and os.path.islink(self.link) and os.readlink(self.link) == self.path:
            os.unlink(self.link)
