"""Test plugin: misbehaves on purpose on one row, in Python, so host tests can prove that
the limits hold for an interpreter too and that the SDK does not blame a row for the
engine running out of memory.

Configuration: ``mode`` (required) and ``row`` (a file row number, default 0). Every row
other than ``row`` gives an entity of type ``Row`` whose external id is the row number. On
``row``:

============== ==========================================================================
mode           what happens
============== ==========================================================================
``raise``      raises ``ValueError("bad value on row N")``: an ordinary row error
``loop``       loops forever (the time limit must stop it)
``alloc``      allocates 1 MiB blocks without end (the memory cap must stop it)
``engine-oom`` raises ``MemoryError``, as the interpreter does when its heap is exhausted:
               not the row's fault, so the SDK lets it trap the instance
``heap-full``  raises ``MemoryError`` only when this instance has transformed a batch
               before (a heap filled by earlier batches): on a fresh instance the row
               goes through
============== ==========================================================================
"""

from stagepush_plugin import Config, Info, Out, PluginError, Row, Schema, export

MODES = ("raise", "loop", "alloc", "engine-oom", "heap-full")


class Misbehave:
    mode: str
    row: int
    batches: int = 0  # batches this instance has started

    @staticmethod
    def describe() -> Info:
        return (
            Info("misbehave", "0.1.0")
            .description("test plugin: misbehaves on purpose on one row (Python)")
            .config_key("mode", ", ".join(MODES), True)
            .config_key("row", "the file row number to misbehave on", False, "0")
        )

    @classmethod
    def init(cls, schema: Schema, config: Config) -> "Misbehave":
        self = cls()
        self.mode = config.require("mode")
        if self.mode not in MODES:
            raise PluginError(f"unknown mode {self.mode} (modes: {', '.join(MODES)})")
        self.row = config.parse("row", int)
        return self

    def transform(self, row: Row, out: Out) -> None:
        if row.index == 0:
            self.batches += 1
        n = row.row_number
        if n == self.row:
            if self.mode == "raise":
                raise ValueError(f"bad value on row {n}")
            if self.mode == "loop":
                while True:
                    pass
            if self.mode == "alloc":
                blocks = []
                while True:
                    blocks.append(bytearray(b"x" * (1 << 20)))
            if self.mode == "engine-oom" or (self.mode == "heap-full" and self.batches > 1):
                raise MemoryError()
        out.entity("Row", str(n)).finish()


Plugin = export(Misbehave)
