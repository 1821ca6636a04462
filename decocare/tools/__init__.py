"""The command-line tools' logic (bin/ and the installed entry points are thin wrappers)."""
