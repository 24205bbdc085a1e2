"""The ``krfeed`` command line: the app, its commands (one module per command group beside
this one), and the one error boundary (:func:`main`)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from krfeed.cli import conditions, consume, decode, demo, orders, record, sim, stream, web
from krfeed.cli.common import err, say, setup_logging, verbose
from krfeed.runner import FeedFailed, Interrupted


def _plain_help_types() -> None:
    """Help shows a parameter's metavar, nothing for flags and arguments (their name says it),
    and a plain word otherwise — not typer's ``<bool>`` / ``<list[str]>`` type labels."""
    from typer.core import TyperArgument, TyperOption

    words = {"str": "TEXT", "int": "N", "float": "NUMBER", "path": "PATH"}

    def display(self: Any, ctx: Any) -> str | None:
        if self.metavar is not None:
            return str(self.metavar)
        if isinstance(self, TyperArgument) or getattr(self, "is_flag", False):
            return None
        label = str(self.display_type(ctx)).strip("<>")
        return words.get(label, label.upper())

    TyperOption.display_type_rich = display  # type: ignore[method-assign]
    TyperArgument.display_type_rich = display  # type: ignore[method-assign]


_plain_help_types()


def _reader_gone() -> None:
    """Point stdout at the null device: what is still buffered for a reader that closed the
    pipe is dropped at exit instead of failing ("Exception ignored … BrokenPipeError")."""
    import os

    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


class _Commands(TyperGroup):
    """The app's commands, run so that a reader closing our stdout (``| head``) stops the
    command quietly with exit 0, like other Unix tools — not with the bare exit 1 of click,
    which catches EPIPE before :func:`main` sees it."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _reader_gone()
            raise typer.Exit(0) from None


app = typer.Typer(
    cls=_Commands,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from krfeed import __version__

        sys.stdout.write(f"krfeed {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="print the version"),
    ] = False,
) -> None:
    """Real-time feeds of Korean brokers (Kiwoom REST API, KIS Open API).

    Exit codes: 0 done (also when stopped by --duration, --count, Ctrl-C, SIGTERM or a
    closed stdout); 1 ran, but rows could not be delivered to a sink (saved to a file, see the
    message), or `decode --strict` met errors; 2 could not do what was asked (bad input, a sink
    or server that cannot be reached, credentials or every subscription refused, nothing to
    replay);
    130 interrupted before starting.
    """


# the commands, in the order of ``krfeed --help``
app.command()(decode.schema)
app.command()(decode.decode)
app.command()(stream.stream)
app.command("sim")(sim.sim_command)
app.command()(record.record)
app.command()(record.replay)
app.command()(demo.demo)
app.command()(demo.query)
app.command()(consume.consume)
app.command("orders")(orders.orders_command)
app.add_typer(conditions.conditions_app, name="conditions")
app.command("web")(web.web_command)


def main() -> None:
    """The ``krfeed`` command, behind the one error boundary of the CLI: whatever a command
    raises reaches the user as one sentence and an exit code, never as a traceback (logged
    at debug level; ``-v`` prints it)."""
    try:
        app()
    except KeyboardInterrupt:
        say("krfeed: interrupted")
        sys.exit(130)
    except BrokenPipeError:
        # the reader of our stdout went away outside a command (e.g. --help | head)
        _reader_gone()
        sys.exit(0)
    except Exception as e:
        import logging

        from krfeed.logs import get_logger

        message, code = explain(e)
        log = get_logger("krfeed.cli")
        verbose_ = verbose() or any(a in ("-v", "--verbose") for a in sys.argv[1:])
        if verbose_:
            if not logging.getLogger().handlers:
                setup_logging(True)
            log.error("the error below stopped krfeed", exc_info=e)
        else:
            log.debug("the error below stopped krfeed", exc_info=e)
        err.print(f"[bold red]krfeed:[/] {escape(message)}", highlight=False, soft_wrap=True)
        sys.exit(code)


def explain(e: BaseException) -> tuple[str, int]:
    """One sentence for an exception that reached the top of a command, and the exit code:
    2 for what the user can fix (input, files, servers, credentials), 1 for a krfeed bug."""
    import sqlite3

    if isinstance(e, Interrupted):
        return str(e), 130
    if isinstance(e, FeedFailed):
        return f"stopped: {e}", 2
    if isinstance(e, OSError):
        what = e.strerror or str(e) or type(e).__name__
        where = f" ({e.filename})" if e.filename else ""
        return f"{what}{where}", 2
    if isinstance(e, sqlite3.Error):
        return f"SQLite: {e}", 2
    module = type(e).__module__.split(".")[0]
    if module == "asyncpg":
        return f"PostgreSQL: {e}", 2
    if module == "nats":
        return f"NATS: {e or type(e).__name__}", 2
    if isinstance(e, ValueError | LookupError) or module == "krfeed":
        # krfeed's own errors (KrfeedError, SinkError, ConfigError, JournalError) are sentences
        return str(e) or type(e).__name__, 2
    return (
        f"internal error ({type(e).__name__}: {e}); run with -v for the traceback "
        "and please report it",
        1,
    )


if __name__ == "__main__":
    main()
