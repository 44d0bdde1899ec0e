"""Result models shared by commands: each renders as text lines or as one JSON document."""

from __future__ import annotations

from pydantic import BaseModel


class TextResult(BaseModel):
    """A command whose result is a document (SQL, a diagram, a settings file)."""

    text: str

    def text_lines(self) -> list[str]:
        return self.text.rstrip("\n").splitlines()


class WrittenFiles(BaseModel):
    files: list[str]

    def text_lines(self) -> list[str]:
        return [f"wrote {f}" for f in self.files]
