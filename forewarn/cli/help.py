"""Help in the words operators know from other tools: `TOPOLOGY`, `INTEGER`, `[LIMIT]`.

Recent typer writes `{topology}`, `<file>` and `<bool>` instead; these classes put the
classic names back, and let the start-up check see the words typed (so --help always
works, whatever the settings)."""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption


class PlainArgument(TyperArgument):
    """An argument shown by its name in capitals, without a type in angle brackets."""

    def display_type_rich(self, ctx: Any) -> str | None:
        """No `<file>` beside the name."""
        return None

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        """`TOPOLOGY` when required, `[LIMIT]` when not (no `{topology}`)."""
        name = self.metavar or (self.name or "value").upper()
        name = name if self.required else f"[{name}]"
        return [name + ("..." if self.nargs != 1 else "")]


def plain(param: Any) -> Any:
    """The parameter with a classic placeholder: a flag none, an option its type's name,
    an argument its own name in capitals."""
    if isinstance(param, TyperArgument):
        param.__class__ = PlainArgument  # a subclass with overrides only: no new state
        param.metavar = (param.name or "value").upper()
    elif isinstance(param, TyperOption) and param.metavar is None:
        param.metavar = "" if param.is_flag else _type_name(param)
    return param


# Click's classic names for the types forewarn's options take.
_CLASSIC = {"int": "INTEGER", "str": "TEXT", "float": "FLOAT", "path": "PATH", "file": "FILE"}


def _type_name(option: Any) -> str:
    """INTEGER, TEXT, PATH... (typer before 0.20 keeps a click type; later ones do not)."""
    kind = getattr(option, "type", None)
    name = str(kind.name if kind is not None else option.bare_type())
    return _CLASSIC.get(name.lower(), name.upper())


def unwrapped(text: str) -> str:
    """A docstring's paragraphs each on one line, for the help to wrap at the terminal's
    width (typer keeps the source's line breaks: an 88-column line wrapped at 80 left one
    word on a line of its own). A line starting a list item keeps its own line."""
    paragraphs = []
    for paragraph in text.strip().split("\n\n"):
        lines = [line.strip() for line in paragraph.splitlines() if line.strip()]
        joined: list[str] = []
        for line in lines:
            if joined and not line.startswith(("- ", "* ")):
                joined[-1] += " " + line
            else:
                joined.append(line)
        paragraphs.append("\n".join(joined))
    return "\n\n".join(paragraphs)


class PlainCommand(TyperCommand):
    """A command whose help uses classic placeholders."""

    def get_params(self, ctx: Any) -> list[Any]:
        """The parameters, each with its classic placeholder."""
        return [plain(param) for param in super().get_params(ctx)]


class PlainGroup(TyperGroup):
    """A group whose help, and its commands' help, use classic placeholders; it also
    remembers the words typed after its name (click clears them before the group's
    callback runs) in ctx.meta["forewarn.words"]."""

    def get_params(self, ctx: Any) -> list[Any]:
        """The parameters, each with its classic placeholder."""
        return [plain(param) for param in super().get_params(ctx)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """The command `cmd_name`, speaking in classic placeholders too."""
        command = super().get_command(ctx, cmd_name)
        if command is not None and command.help:
            command.help = unwrapped(command.help)
        if type(command) is TyperCommand:
            command.__class__ = PlainCommand
        elif type(command) is TyperGroup:
            command.__class__ = PlainGroup
        return command

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """Remember the words, then find the command as usual."""
        ctx.meta.setdefault("forewarn.words", list(args))
        return super().resolve_command(ctx, args)
