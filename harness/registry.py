"""The one shape of every registry the harness looks kinds up in by name (objectives,
architectures, datasets, experiment kinds): a dict that refuses a name twice and names the
known ones when asked for another. A leaf: it imports nothing of the harness."""

from typing import TypeVar

T = TypeVar("T")


class Registry(dict[str, T]):
    def __init__(self, what: str):
        super().__init__()
        self.what = what  # "objective", "architecture", ...: the word in its errors

    def add(self, name: str, entry: T) -> None:
        if name in self:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self[name] = entry

    def entry(self, name: str) -> T:
        if name not in self:
            raise ValueError(f"unknown {self.what} {name!r}; known: {', '.join(sorted(self))}")
        return self[name]
