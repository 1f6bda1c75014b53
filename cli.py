"""scelle's command line: parses, asks for passphrases, prints, chooses the exit code.

Everything else lives in the library. Library modules are imported inside the commands
so that `scelle --help` (and the investigators' `scelle verify`) never pay for the
database layer, and each command for what it does not use. The commands people type
dozens of times a day start in under 0.3 s on a site of a million segments
(bench/startup.py): `main` has typer make only the command named (`narrowed`), and typer
checks option values without pydantic where that changes nothing (`_Checked`).
"""

from __future__ import annotations

import copy
import inspect
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer._click.exceptions import (
    BadParameter,
    ClickException,
    MissingParameter,
    NoArgsIsHelpError,
    NoSuchOption,
)
from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
from typer.core import TyperCommand, TyperGroup, _TyperParameter
from typer.exceptions import Abort

from custody.errors import ExitCode, ScelleError, SigningKeyError
from custody.i18n import N_, _, ngettext, os_error_text
from custody.text import INT64_MAX, whole_number
from requisition.roles import Permission

if TYPE_CHECKING:
    from custody.checks import Report
    from custody.config import Settings
    from custody.render import KeyForm
    from custody.site import Site
    from exporters.documents import PaperSigner

EXIT_CODES = N_("""\b
Exit codes:
  0  success
  1  internal error (a bug: please report it)
  2  usage error
  3  invalid input
  4  integrity failure: verification failed
  5  refused: wrong state or not permitted
  6  environment: site, database, file or tool missing or unreadable
  7  key error: missing key, wrong passphrase
  8  purge: nothing to do
  9  purge: partly failed (some files could not be deleted)
  10  verify: authentic but partial export (gaps stated)
  141  the reader of the output closed the pipe early (| head): as SIGPIPE""")

# The framework's own words: typer asks gettext's global domain for them, which the CLI
# points at scelle's catalog (custody.i18n.frame_language); the rest click spells in
# English, and the classes below say it in the user's language.
_FRAMEWORK = (
    N_("Options"),
    N_("Arguments"),
    N_("Commands"),
    N_("default: {default}"),
    N_("required"),
    N_("env var: {var}"),
    N_("Missing command."),
    N_("No such command {name!r}."),
    N_("Aborted!"),
    N_("Show this message and exit."),
    N_("[OPTIONS]"),
    N_("COMMAND [ARGS]..."),
)


if TYPE_CHECKING:
    _Base = TyperCommand
else:
    _Base = object


@dataclass(frozen=True)
class _Checked(RuntimeParam):
    """typer's check of a parameter's value, without pydantic where it changes nothing.

    typer checks every value through a pydantic TypeAdapter built on first use: importing
    pydantic and building the adapters took about a third of an everyday command's
    start-up, more than the command's own work. A text given for a text parameter is taken as it
    is, and a parameter with its own parser gets the parser's answer: what the adapters
    return for them. Anything else (paths, lists, numbers without a parser), and a
    parser's ValueError (which pydantic words), goes through typer's own check. An
    option not given never reaches here (typer answers None itself)."""

    descriptor: TypeDescriptor

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        described = self.descriptor
        if not (described.is_file or described.is_list or described.is_tuple):
            parser = self.parameter_info.parser
            if parser is not None:
                try:
                    return parser(value)
                except (ValueError, AssertionError):
                    pass  # typer's check says it, in its words
            elif self.annotation is str and isinstance(value, str):
                return value
        return build_runtime_param(described)._coerce_value(value, param=param, ctx=ctx)


def _check_lightly(param: object) -> None:
    """Have typer check `param`'s value as _Checked says."""
    if isinstance(param, _TyperParameter) and param._runtime_param is None:
        described = param.type_descriptor
        param._runtime_param = _Checked(described.parameter_info, described.annotation, described)


class _Speaks(_Base):
    """Help in the user's language: help texts are English in the code (docstrings, N_)
    and translated when shown, so that the language can be chosen at each run.

    Its parameters' values are checked as _Checked says."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            _check_lightly(param)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # made on first use
        _check_lightly(option)
        return option

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)
        return [
            _(piece) if piece in ("[OPTIONS]", "COMMAND [ARGS]...") else piece for piece in pieces
        ]

    def format_usage(self, ctx: Any, formatter: Any) -> None:
        formatter.write_usage(
            ctx.command_path, " ".join(self.collect_usage_pieces(ctx)), _("Usage: ")
        )

    def format_help_text(self, ctx: Any, formatter: Any) -> None:
        if self.help:
            formatter.write_paragraph()
            with formatter.indentation():
                formatter.write_text(_(inspect.cleandoc(self.help)).partition("\f")[0])

    def format_epilog(self, ctx: Any, formatter: Any) -> None:
        if self.epilog:
            formatter.write_paragraph()
            with formatter.indentation():
                formatter.write_text(_(inspect.cleandoc(self.epilog)))

    def get_short_help_str(self, limit: int = 45) -> str:
        from typer._click.utils import make_default_short_help

        return make_default_short_help(_(inspect.cleandoc(self.help or "")), limit).strip()

    def format_options(self, ctx: Any, formatter: Any) -> None:
        sections: dict[str, list[tuple[str, str]]] = {"argument": [], "option": []}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None or param.param_type_name not in sections:
                continue
            names, text = record
            shown = getattr(param, "help", None)
            if shown and text.startswith(shown):
                text = _(shown) + text[len(shown) :]
            sections[param.param_type_name].append((_metavars(names), text))
        for kind, title in (("argument", _("Arguments")), ("option", _("Options"))):
            if sections[kind]:
                with formatter.section(title):
                    formatter.write_dl(sections[kind])
        if isinstance(self, TyperGroup):
            self.format_commands(ctx, formatter)


_METAVARS = {
    "<str>": N_("<text>"),
    "<list[str]>": N_("<text>"),  # a repeatable option: the same placeholder, given again
    "<int>": N_("<integer>"),
    "<path>": N_("<path>"),
    "<float>": N_("<number>"),
    "CAMERA=FROM/TO": N_("CAMERA=FROM/TO"),
}


def _metavars(names: str) -> str:
    """The value placeholders of an option (`--pv TEXT`), in the user's language."""
    return " ".join(_(_METAVARS[w]) if w in _METAVARS else w for w in names.split(" "))


class _Command(_Speaks, TyperCommand):
    """A command whose help speaks the user's language."""


class _Group(_Speaks, TyperGroup):
    """A group of commands whose help speaks the user's language."""


class _ScelleGroup(_Group):
    """The root: chooses the language, turns every ScelleError into one line on stderr and
    its documented exit code, and says the framework's usage errors in the user's language."""

    def main(  # type: ignore[override]
        self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any
    ) -> Any:
        standalone = extra.pop("standalone_mode", True)
        try:
            _speak(list(sys.argv[1:] if args is None else args))
        except ScelleError as exc:
            typer.echo(_("scelle: error: {message}").format(message=exc.message), err=True)
            sys.exit(int(exc.exit_code))
        try:
            result = super().main(args, prog_name, standalone_mode=False, **extra)
        except ClickException as exc:
            if not standalone:
                raise
            _show_usage_error(exc)
            sys.exit(exc.exit_code)
        except Abort:
            if not standalone:
                raise
            typer.echo(_("Aborted!"), err=True)
            sys.exit(1)
        if not standalone:
            return result
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: Any) -> Any:
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # a reader that left early shows here, not at exit
            return result
        except BrokenPipeError:  # `scelle ledger show | head -1`: the reader has enough
            _discard_stdout()
            raise typer.Exit(int(ExitCode.BROKEN_PIPE)) from None
        except ScelleError as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            typer.echo(_("scelle: error: {message}").format(message=exc.message), err=True)
            if exc.hint:
                typer.echo(_("hint: {hint}").format(hint=exc.hint), err=True)
            raise typer.Exit(int(exc.exit_code)) from None
        except OSError as exc:  # a file or device the environment did not provide
            if (ctx.obj or {}).get("debug"):
                raise
            message = os_error_text(exc)
            if exc.filename:
                message = _("{reason}: {path}").format(reason=message, path=exc.filename)
            typer.echo(_("scelle: error: {message}").format(message=message), err=True)
            raise typer.Exit(int(ExitCode.ENVIRONMENT)) from None


def _speak(args: list[str]) -> None:
    """Choose this run's language (SCELLE_LANG, the site's `language`, the locale) before
    anything is said, for scelle and for the framework alike."""
    from custody.config import configured_language
    from custody.i18n import choose, frame_language, use

    home = None
    for i, arg in enumerate(args):
        if arg == "--home" and i + 1 < len(args):
            home = args[i + 1]
        elif arg.startswith("--home="):
            home = arg.partition("=")[2]
        elif not arg.startswith("-"):
            break
    # A SCELLE_LANG or a setting naming no language scelle speaks is refused in the
    # locale's language (the user's best guess of what they read).
    use(choose(None, {k: v for k, v in os.environ.items() if k != "SCELLE_LANG"}))
    language = choose(configured_language(home))
    use(language)
    frame_language(language)


def _show_usage_error(exc: ClickException) -> None:
    """A usage error as click shows it (usage, where to find help, the error), in the
    user's language."""
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, NoArgsIsHelpError):
        typer.echo(exc.format_message(), err=True)
        return
    if ctx is not None:
        typer.echo(ctx.get_usage(), err=True)
        if ctx.command.get_help_option(ctx) is not None:
            typer.echo(
                _("Try '{command} {option}' for help.").format(
                    command=ctx.command_path, option=ctx.help_option_names[0]
                )
                + "\n",
                err=True,
            )
    typer.echo(_("Error: {message}").format(message=usage_error_text(exc)), err=True)


# What click says in English (typer's vendored copy has no catalog), as patterns of its
# messages, and the same in the user's language. Checked by tests/test_i18n.py.
_CLICK_MESSAGES = (
    (r"Option '(?P<name>.+)' requires an argument\.", N_("Option {name} needs a value.")),
    (
        r"Option '(?P<name>.+)' requires (?P<count>\d+) arguments\.",
        N_("Option {name} needs {count} values."),
    ),
    (r"Option '(?P<name>.+)' does not take a value\.", N_("Option {name} takes no value.")),
    (
        r"Got unexpected extra argument(?:s|\(s\))? \((?P<args>.*)\)",
        N_("Unexpected extra argument(s): {args}"),
    ),
    (r"Argument '(?P<name>.+)' takes (?P<count>\d+) values\.", N_("{name} takes {count} values.")),
    (
        r"(?P<value>'.*') is not one of (?P<choices>.+)\.",
        N_("{value} is not one of {choices}."),
    ),
    (r"Value (?P<value>'.*') is not a valid integer\.", N_("{value} is not a whole number.")),
    (r"Value (?P<value>'.*') is not a valid float\.", N_("{value} is not a number.")),
    (r"Value (?P<value>'.*') is not a valid (?P<kind>.+)\.", N_("{value} is not a valid {kind}.")),
    (r"(?:File|Path|Directory) '(?P<path>.+)' does not exist\.", N_("{path} does not exist.")),
    (r"(?:File|Path|Directory) '(?P<path>.+)' is a file\.", N_("{path} is a file, not a folder.")),
    (
        r"(?:File|Path|Directory) '(?P<path>.+)' is a directory\.",
        N_("{path} is a folder, not a file."),
    ),
    (r"(?:File|Path|Directory) '(?P<path>.+)' is not readable\.", N_("{path} cannot be read.")),
    (r"(?:File|Path|Directory) '(?P<path>.+)' is not writable\.", N_("{path} cannot be written.")),
    (r"(?P<said>.+)\. Did you mean (?P<names>.+)\?", N_("{said}. Did you mean {names}?")),
)


def _click_text(message: str) -> str:
    """One of click's English messages in the user's language (ours pass unchanged)."""
    for pattern, template in _CLICK_MESSAGES:
        match = re.fullmatch(pattern, message, re.DOTALL)
        if match:
            parts = {k: _click_text(v) if k == "said" else v for k, v in match.groupdict().items()}
            return _(template).format(**parts)
    return message


def usage_error_text(exc: ClickException) -> str:
    """What was wrong with the command line, in the user's language."""
    if isinstance(exc, NoSuchOption):
        text = _("No such option: {name}").format(name=exc.option_name)
        if exc.possibilities:
            names = ", ".join(sorted(exc.possibilities))
            text += " " + _("(possible options: {names})").format(names=names)
        return text
    if isinstance(exc, MissingParameter):
        hint = exc.param.get_error_hint() if exc.param else None
        kind = exc.param_type or (exc.param.param_type_name if exc.param else "parameter")
        template = {
            "option": N_("Missing option {name}."),
            "argument": N_("Missing argument {name}."),
        }.get(kind, N_("Missing parameter {name}."))
        return _(template).format(name=hint or "")
    if isinstance(exc, BadParameter) and (exc.param or exc.param_hint):
        given = exc.param_hint or (exc.param.get_error_hint() if exc.param else "")
        names = given if isinstance(given, str) else " / ".join(given)
        return _("Invalid value for {name}: {problem}").format(
            name=names, problem=_click_text(exc.message)
        )
    return _click_text(exc.message)


def _discard_stdout() -> None:
    """Point stdout at /dev/null: what is still buffered for a reader that closed the pipe
    goes nowhere, instead of failing again in Python's flush at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # not a file descriptor (a test runner's capture)
        pass


class _Typer(typer.Typer):
    """A typer app whose commands speak the user's language."""

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", _Command)
        return super().command(*args, **kwargs)


def _app(help_text: str, **kwargs: Any) -> typer.Typer:
    kwargs.setdefault("cls", _Group)
    return _Typer(
        help=help_text,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        **kwargs,
    )


app = _app(
    N_("scelle: judicial footage requisitions with a verifiable chain of custody."),
    cls=_ScelleGroup,
    epilog=EXIT_CODES,
)
config_app = _app(N_("Show the configuration and where each value comes from."))
keys_app = _app(N_("The site's signing key."))
ledger_app = _app(N_("The custody ledger: show, prove, checkpoint, verify."))
proof_app = _app(N_("Merkle proofs of the ledger (JSON, base64 hashes)."))
db_app = _app(N_("The site database."))
app.add_typer(config_app, name="config")
app.add_typer(keys_app, name="keys")
app.add_typer(ledger_app, name="ledger")
ledger_app.add_typer(proof_app, name="proof")
app.add_typer(db_app, name="db")
camera_app = _app(N_("The camera register: authorisations, retention, stores, clock offsets."))
footage_app = _app(N_("Footage: generate synthetic footage, index stores, find a window."))
app.add_typer(camera_app, name="camera")
app.add_typer(footage_app, name="footage")
requisition_app = _app(N_("Requisitions: register, decide, extract, hand over."))
export_app = _app(N_("Exports: copy to removable media, read back."))
app.add_typer(requisition_app, name="requisition")
app.add_typer(export_app, name="export")
doc_app = _app(N_("Legal documents, as HTML and PDF: cover sheet, seal label, register."))
app.add_typer(doc_app, name="doc")
hold_app = _app(N_("Holds: keep footage past its retention for a procedure."))
app.add_typer(hold_app, name="hold")
agent_app = _app(N_("Designated agents (CSI L252-2): who may act, in which role."))
app.add_typer(agent_app, name="agent")
witness_app = _app(
    N_("A witness another institution runs: cosigns the checkpoints of the sites it follows.")
)
app.add_typer(witness_app, name="witness")


def _version() -> str:
    """This scelle's version: the installed package's, else pyproject.toml's (a checkout
    run without installing it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("scelle")
    except PackageNotFoundError:
        import tomllib

        pyproject = tomllib.loads(Path(__file__).with_name("pyproject.toml").read_text())
        return str(pyproject["project"]["version"])


def _print_version(show: bool) -> None:
    if show:
        typer.echo(f"scelle {_version()}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    home: Annotated[
        Path | None, typer.Option("--home", help=N_("Site directory (default: $SCELLE_HOME)."))
    ] = None,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help=N_("Database URL (SCELLE_DATABASE_URL)."))
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help=N_("Show tracebacks of errors."))] = False,
    _version_flag: Annotated[
        bool,
        typer.Option(
            "--version",
            help=N_("Print scelle's version and exit."),
            is_eager=True,
            callback=_print_version,
        ),
    ] = False,
) -> None:
    ctx.obj = {"home": str(home) if home else None, "database_url": database_url, "debug": debug}


def _settings(ctx: typer.Context) -> Settings:
    from custody.config import load_settings

    obj = ctx.find_root().obj or {}
    return load_settings({"home": obj.get("home"), "database_url": obj.get("database_url")})


@contextmanager
def _open(ctx: typer.Context, permission: Permission) -> Iterator[Site]:
    """The site, once the acting login is known to be a designated agent allowed to do
    this (a refusal is recorded in the ledger and exits 5). Whatever the command
    appended ends covered by a signed checkpoint, or it says which entries are not, and
    why (custody/coverage.py)."""
    from custody.coverage import cover, size_now
    from custody.render import coverage_lines
    from requisition.agents import authorise
    from requisition.site import open_site

    site = open_site(_settings(ctx))
    try:
        since = size_now(site)
        try:
            authorise(site, site.login, permission, " ".join(ctx.command_path.split()[1:]))
            yield site
        finally:
            _say(coverage_lines(cover(site, since)), err=True)
    finally:
        site.close()


def _papers(site: Site) -> PaperSigner:
    """What signs the papers: the site key and the document certificate, unlocked with
    the passphrase."""
    from requisition.papers import paper_signer

    return paper_signer(site, _passphrase())


def _passphrase_at_hand() -> bool:
    """Whether _passphrase would find one (a file, the environment, a terminal)."""
    return bool(
        os.environ.get("SCELLE_PASSPHRASE_FILE")
        or os.environ.get("SCELLE_PASSPHRASE")
        or sys.stdin.isatty()
    )


def _agent_running(site: Site) -> bool:
    """A key agent of this Unix user answers (not a socket left by a dead one)."""
    from custody.key_agent import alive

    return alive(site.settings.key_agent_socket)


def _passphrase(confirm: bool = False) -> bytes:
    """SCELLE_PASSPHRASE_FILE, then SCELLE_PASSPHRASE, then a hidden prompt on a terminal."""
    path = os.environ.get("SCELLE_PASSPHRASE_FILE")
    if path:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise SigningKeyError(
                _("cannot read SCELLE_PASSPHRASE_FILE {path}: {reason}").format(
                    path=path, reason=os_error_text(exc)
                )
            ) from exc
        return data[:-1] if data.endswith(b"\n") else data
    if os.environ.get("SCELLE_PASSPHRASE"):
        return os.environ["SCELLE_PASSPHRASE"].encode()
    if not sys.stdin.isatty():
        raise SigningKeyError(
            _("no passphrase: not on a terminal"),
            hint=_("set SCELLE_PASSPHRASE_FILE or SCELLE_PASSPHRASE"),
        )
    value: str = typer.prompt(_("Key passphrase"), hide_input=True)
    if confirm and typer.prompt(_("The same passphrase again"), hide_input=True) != value:
        raise SigningKeyError(
            _("the two passphrases differ: nothing was created"),
            hint=_("type the same passphrase twice"),
        )
    return value.encode()


def _say(lines: Iterable[str], err: bool = False) -> None:
    """Print what a renderer returned, one line each."""
    for line in lines:
        typer.echo(line, err=err)


def _fail(message: str, code: ExitCode) -> NoReturn:
    typer.echo(_("scelle: error: {message}").format(message=message), err=True)
    raise typer.Exit(int(code))


def _whole(what: str, low: int = 0, high: int | None = INT64_MAX) -> Callable[[str], int]:
    """The parser of a whole-number argument: ASCII digits within [low, high], else one
    line and exit 3 (`1_0` and `٣` are not numbers here, and 2**63 is not an id that a
    database driver should meet: it raised OverflowError)."""

    def parse(value: str | int) -> int:
        if isinstance(value, int):  # a default
            return value
        return whole_number(value, what, low=low, high=high)

    return parse


@app.command()
def init(
    ctx: typer.Context,
    site_name: Annotated[
        str | None,
        typer.Option(help=N_("Key name and checkpoint origin prefix, e.g. csv.example.fr.")),
    ] = None,
    admin_name: Annotated[
        str | None,
        typer.Option(help=N_("Your full name: you become the site's first administrator.")),
    ] = None,
    designation: Annotated[
        str | None,
        typer.Option(
            help=N_(
                "Reference of the order designating you (arrêté, décision); "
                "default: site initialisation."
            ),
        ),
    ] = None,
) -> None:
    """Create the site: database, encrypted signing key, ledger and first checkpoint.

    The login running it becomes the first administrator in the agents register."""
    from custody.config import load_settings
    from custody.keys import load_public_key
    from custody.render import site_created_lines
    from requisition.agents import bootstrap
    from requisition.site import init_site

    obj = ctx.find_root().obj or {}
    settings = load_settings(
        {"home": obj.get("home"), "database_url": obj.get("database_url"), "site_name": site_name}
    )

    def first_admin(site: Site) -> None:
        bootstrap(
            site, site.login, admin_name or site.login, designation or _("site initialisation")
        )

    site, checkpoint = init_site(settings, _passphrase(confirm=True), then=first_admin)
    with site:
        admin, database = site.login, site.db.display_url
    public = load_public_key(settings.public_key_file)
    _say(site_created_lines(settings, database, public, checkpoint.size, admin))


@config_app.command("show")
def config_show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=N_("Machine-readable output."))] = False,
) -> None:
    """Every setting, its value and the source that won (flag, env, file, default).

    Once the site exists, its name is the one its ledger entry 0 records (set at init)."""
    from custody.render import config_json, config_lines
    from custody.site import recorded_site_name

    settings = _settings(ctx)
    recorded = recorded_site_name(settings)
    rows = (settings.as_recorded(recorded) if recorded else settings).rows()
    if as_json:
        typer.echo(config_json(rows))
        return
    _say(config_lines(rows))


@keys_app.command("agent")
def keys_agent(ctx: typer.Context) -> None:
    """Hold the site key unlocked for unattended work, until stopped (SIGTERM, Ctrl-C).

    Commands of the same Unix user then end with their ledger entries covered by a
    signed checkpoint, and the nightly purge gets its destruction certificate, with no
    passphrase on disk. It signs only what it reads in the ledger: checkpoints that
    extend every earlier one, and the certificates of recorded purge runs."""
    from requisition.key_agent import serve_agent

    with _open(ctx, Permission.LEDGER_WRITE) as site:
        serve_agent(site, _papers(site), lambda line: typer.echo(line, err=True))


@keys_app.command("show")
def keys_show(
    ctx: typer.Context,
    pem: Annotated[bool, typer.Option("--pem", help=N_("The public key, PEM (openssl)."))] = False,
    ssh: Annotated[bool, typer.Option("--ssh", help=N_("The public key, OpenSSH line."))] = False,
    vkey: Annotated[bool, typer.Option("--vkey", help=N_("The C2SP note verifier key."))] = False,
    fingerprint: Annotated[
        bool,
        typer.Option("--fingerprint", help=N_("As ssh-keygen -lf and openssl|sha256sum print.")),
    ] = False,
) -> None:
    """The site's public key, in the forms investigators and auditors compare."""
    from custody.render import key_lines

    with _open(ctx, Permission.READ) as site:
        identity = site.identity()
    chosen: dict[KeyForm, bool] = {"pem": pem, "ssh": ssh, "vkey": vkey, "fingerprint": fingerprint}
    forms = [form for form, on in chosen.items() if on]
    if len(forms) > 1:
        _fail(_("choose one of --pem, --ssh, --vkey, --fingerprint"), ExitCode.USAGE)
    _say(key_lines(identity, site.settings.public_key_file, forms[0] if forms else None))


_WITNESS_DIR = Annotated[
    Path, typer.Option("--dir", help=N_("The witness's directory (no scelle site needed)."))
]


@witness_app.command("init")
def witness_init(
    directory: _WITNESS_DIR,
    name: Annotated[
        str, typer.Option(help=N_("Its name on cosignatures, e.g. witness.prefecture.example/1."))
    ],
) -> None:
    """Create a witness: an encrypted key, and the list of logs it follows (empty)."""
    from custody.witness_server import init_witness

    vkey = init_witness(directory, name, _passphrase(confirm=True))
    _say(
        [
            _("witness {name} created in {path}").format(name=name, path=directory),
            _("its key, for the sites' witness policy: {vkey}").format(vkey=vkey),
        ]
    )


@witness_app.command("follow")
def witness_follow(
    directory: _WITNESS_DIR,
    vkey: Annotated[
        str,
        typer.Argument(
            metavar="VKEY", help=N_("The site's key as 'scelle keys show --vkey' prints it.")
        ),
    ],
    origin: Annotated[
        str | None,
        typer.Option(
            help=N_("The log's origin line (default: <key name>/ledger, a scelle site's).")
        ),
    ] = None,
) -> None:
    """Follow a site's ledger: cosign its checkpoints from now on."""
    from custody.witness_server import add_log

    origin = add_log(directory, vkey, origin)
    typer.echo(_("following {origin}").format(origin=origin))


@witness_app.command("serve")
def witness_serve(
    directory: _WITNESS_DIR,
    listen: Annotated[
        str, typer.Option(help=N_("Address and port to listen on."))
    ] = "127.0.0.1:7380",
) -> None:
    """Answer C2SP tlog-witness add-checkpoint requests until stopped."""

    from custody.witness_server import load_witness, make_server, serve_until_stopped

    host, _sep, port_text = listen.rpartition(":")
    if not host or not port_text.isdigit() or not 0 <= int(port_text) < 65536:  # 0: any free
        _fail(_("--listen must be HOST:PORT, e.g. 127.0.0.1:7380"), ExitCode.USAGE)
    witness = load_witness(directory, _passphrase())
    server = make_server(witness, host, int(port_text))
    typer.echo(
        _("witness {name} listening on http://{host}:{port}/add-checkpoint").format(
            name=witness.name, host=host, port=server.server_address[1]
        ),
        err=True,
    )
    serve_until_stopped(server)


@ledger_app.command("checkpoint")
def ledger_checkpoint(ctx: typer.Context) -> None:
    """Sign the current tree head and print the checkpoint (C2SP signed note); with a
    witness policy, with the cosignatures of the witnesses that vouch for it."""
    from custody import checkpoints
    from custody.checkpoint_stamps import stamp_checkpoint
    from custody.cosigning import cosign, evidence, load_policy
    from custody.coverage import agent_checkpoint, tell_agent
    from custody.note import parse_checkpoint, parse_note
    from custody.render import stamp_lines, witnessed_lines

    with _open(ctx, Permission.LEDGER_WRITE) as site:
        if not _passphrase_at_hand() and _agent_running(site):
            _cp, note = agent_checkpoint(site)
        else:
            signer = site.signer(_passphrase())
            _cp, note = checkpoints.sign(site.db, site.settings.checkpoint_file, signer)
            tell_agent(site)
        stamped = stamp_checkpoint(site.db, site.settings, note)
        policy = load_policy(site.settings)
        witnessed = cosign(site.db, policy, note) if policy is not None else None
    _say(stamp_lines(stamped, parse_checkpoint(parse_note(note).body).size), err=True)
    if witnessed is None or policy is None:
        typer.echo(note, nl=False)
        return
    typer.echo(witnessed.note, nl=False)
    _say(witnessed_lines(witnessed, policy), err=True)
    refused = evidence(witnessed)
    if refused is not None:
        raise refused


@ledger_app.command("disavow")
def ledger_disavow(
    ctx: typer.Context,
    row: Annotated[
        int,
        typer.Argument(
            metavar="CHECKPOINT", help=N_("Database checkpoint id."), parser=_whole("CHECKPOINT")
        ),
    ],
    reason: Annotated[str, typer.Option(help=N_("What the investigation found (required)."))],
) -> None:
    """Record that a forged database checkpoint (its signature fails) proves nothing.

    'scelle ledger verify' raises the alarm about such a row until this is recorded."""
    from custody.checkpoints import disavow

    with _open(ctx, Permission.DATABASE) as site:
        stored = disavow(site.ledger, site.login, row, reason)
    typer.echo(
        _("{where} (added by {agent}) disavowed").format(
            where=stored.where, agent=stored.signed_by or _("unknown")
        )
    )


@ledger_app.command("note")
def ledger_note(
    ctx: typer.Context,
    subject: Annotated[str, typer.Argument(help=N_("What the note is about."))],
    reason: Annotated[str, typer.Option(help=N_("What happened and why (required)."))],
    procedure: Annotated[str | None, typer.Option(help=N_("PV or procedure number."))] = None,
) -> None:
    """Record an event that happened outside scelle (a phone call, a seal opened)."""
    with _open(ctx, Permission.LEDGER_WRITE) as site:
        entry = site.ledger.note(site.login, subject, reason, procedure)
    typer.echo(_("entry {seq}").format(seq=entry.seq))


@ledger_app.command("show")
def ledger_show(
    ctx: typer.Context,
    seq: Annotated[
        int | None,
        typer.Argument(
            metavar="N",
            help=N_("Entry number; default: the latest."),
            parser=_whole("N", high=None),
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help=N_("JSON output."))] = False,
    raw: Annotated[bool, typer.Option("--raw", help=N_("Entry N's exact stored bytes."))] = False,
    limit: Annotated[
        int, typer.Option(help=N_("Entries listed without N."), parser=_whole("--limit"))
    ] = 20,
) -> None:
    """List the latest entries, or show entry N."""
    from custody.entry import decode_entry
    from custody.render import entry_lines, json_text

    with _open(ctx, Permission.AUDIT) as site:
        ledger = site.ledger
        if raw:
            if seq is None:
                _fail(_("--raw needs an entry number"), ExitCode.USAGE)
            sys.stdout.buffer.write(ledger.entry(seq))
            sys.stdout.buffer.flush()
            return
        if seq is not None:
            entries = [(seq, ledger.entry(seq))]
        else:
            entries = list(ledger.entries(max(0, ledger.size() - limit)))
    decoded = [decode_entry(body) for _, body in entries]
    if as_json:
        typer.echo(json_text(decoded[0] if seq is not None else decoded))
        return
    _say(entry_lines(decoded, detailed=seq is not None, zone=site.settings.timezone))


@proof_app.command("inclusion")
def proof_inclusion(
    ctx: typer.Context,
    index: Annotated[
        int, typer.Option("--index", help=N_("Entry number."), parser=_whole("--index"))
    ],
    size: Annotated[
        int | None,
        typer.Option("--size", help=N_("Tree size (default: all)."), parser=_whole("--size")),
    ] = None,
) -> None:
    """Inclusion proof of entry INDEX in the tree of SIZE entries."""
    from custody.render import json_text

    with _open(ctx, Permission.AUDIT) as site:
        proof = site.ledger.inclusion(index, size)
    typer.echo(json_text(proof.to_json()))


@proof_app.command("consistency")
def proof_consistency(
    ctx: typer.Context,
    old: Annotated[
        int, typer.Option("--from", help=N_("Earlier tree size."), parser=_whole("--from"))
    ],
    new: Annotated[
        int | None,
        typer.Option("--to", help=N_("Later tree size (default: all)."), parser=_whole("--to")),
    ] = None,
) -> None:
    """Consistency proof that the tree of FROM entries is a prefix of the tree of TO."""
    from custody.render import json_text

    with _open(ctx, Permission.AUDIT) as site:
        proof = site.ledger.consistency(old, new)
    typer.echo(json_text(proof.to_json()))


@ledger_app.command("verify")
def ledger_verify(
    ctx: typer.Context,
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option("--checkpoint", help=N_("A checkpoint file an auditor kept (repeatable).")),
    ] = None,
    bundle: Annotated[
        Path | None,
        typer.Option("--bundle", help=N_("Check a bundle from 'ledger export' (no site needed).")),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option("--key", help=N_("With --bundle: the site key fingerprint you trust.")),
    ] = None,
    witness_policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            help=N_("With --bundle: a witness policy (C2SP tlog-policy): check the cosignatures."),
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help=N_("With --bundle: JSON output: checks, witnesses.")),
    ] = False,
    audit_index: Annotated[
        bool,
        typer.Option("--audit-index", help=N_("Also re-derive the audit index from every entry.")),
    ] = False,
) -> None:
    """Recompute every leaf and root; check every checkpoint's signature and consistency.

    With --bundle, check an exported slice of the ledger offline instead."""
    if bundle is None and (witness_policy is not None or as_json):
        option = "--policy" if witness_policy is not None else "--json"
        _fail(_("{option} only with --bundle").format(option=option), ExitCode.USAGE)
    if bundle is not None:
        from custody.bundle_verify import bundle_json, verify_bundle
        from custody.checks import VerificationFailedError
        from custody.policy import read_policy
        from custody.render import bundle_verified, json_text
        from custody.witness_check import witness_lines

        witnesses = read_policy(witness_policy) if witness_policy is not None else None
        try:
            checked, count = verify_bundle(bundle, key, witnesses)
        except VerificationFailedError as failed:
            if as_json:
                typer.echo(json_text(bundle_json(failed.report, None)))
            else:
                _show_report(failed.report, "bundle")
            raise
        if as_json:
            typer.echo(json_text(bundle_json(checked, count)))
            return
        _show_report(checked, "bundle")
        _say(witness_lines(checked))
        typer.echo(bundle_verified(checked, count))
        return
    from custody.audit import recompute
    from custody.checkpoint_stamps import latest_stamped
    from custody.cosigning import cosign, evidence, load_policy
    from custody.render import ledger_report_lines, stamped_head_lines, witnessed_lines
    from custody.verify import verify_ledger

    with _open(ctx, Permission.READ) as site:
        report = verify_ledger(site.db, site.settings, checkpoint or [])
        if audit_index:
            recompute(site.db)
        policy = load_policy(site.settings)
        witnessed = None
        if policy is not None and report.latest_note is not None:
            witnessed = cosign(site.db, policy, report.latest_note, keep=False)
        stamped = latest_stamped(site.db, site.settings, site.identity().origin)
    _say(ledger_report_lines(report, audit_index))
    _say(stamped_head_lines(stamped, site.settings.timestamp_ca is not None))
    if witnessed is not None and policy is not None:
        _say(witnessed_lines(witnessed, policy))
        refused = evidence(witnessed)
        if refused is not None:
            raise refused


@ledger_app.command("export")
def ledger_export(
    ctx: typer.Context,
    first: Annotated[
        int,
        typer.Option("--from", help=N_("First entry (seq), inclusive."), parser=_whole("--from")),
    ] = 0,
    last: Annotated[
        int | None,
        typer.Option(
            "--to",
            help=N_("Last entry, inclusive (default: the latest checkpoint's)."),
            parser=_whole("--to"),
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help=N_("New directory (default: ./ledger-N-M)."))
    ] = None,
    reason: Annotated[str, typer.Option(help=N_("Why: recorded in the ledger."))] = "audit",
) -> None:
    """Write a bundle (entries, range proof, signed checkpoint, VERIFY.html) an auditor
    checks offline: with scelle, by hand, or in a browser."""
    from custody.render import bundle_lines
    from requisition.ledger_bundle import export_ledger_bundle

    with _open(ctx, Permission.AUDIT) as site:
        made = export_ledger_bundle(site, site.login, out, first, last, reason)
    _say(bundle_lines(made))


@db_app.command("upgrade")
def db_upgrade(
    ctx: typer.Context,
    admin_name: Annotated[
        str | None,
        typer.Option(help=N_("If the agents register is new: your name, as first administrator.")),
    ] = None,
) -> None:
    """Apply pending schema migrations (as the database owner).

    A site upgraded from before the agents register has none: the login running the
    upgrade becomes its first administrator, recorded in the ledger."""
    from requisition.database import upgrade_site

    done = upgrade_site(_settings(ctx), admin_name)
    versions = ", ".join(f"v{version}" for version in done.applied)
    typer.echo(
        _("applied migrations {versions}").format(versions=versions)
        if done.applied
        else _("schema is current (v{version})").format(version=done.latest)
    )
    if done.first_admin:
        typer.echo(_("first administrator: {login}").format(login=done.first_admin))
    if done.compacted:
        typer.echo(
            ngettext(
                "{n} destroyed segment record moved out of the footage index into periods",
                "{n} destroyed segment records moved out of the footage index into periods",
                done.compacted,
            ).format(n=done.compacted)
        )
    for batch in done.refused:
        typer.echo(
            _(
                "ingest batch {batch}: its rows no longer match its ledger entry: kept in the "
                "index, not compacted"
            ).format(batch=batch),
            err=True,
        )


@db_app.command("copy")
def db_copy(
    ctx: typer.Context,
    to: Annotated[str, typer.Option("--to", help=N_("URL of the empty target database."))],
) -> None:
    """Copy the site's database to another (SQLite to PostgreSQL), both ledgers verified.

    The source is left untouched; point the site at the target afterwards."""
    from custody.render import copied_lines
    from requisition.database import copy_site

    with _open(ctx, Permission.DATABASE) as site:
        copied, shown = copy_site(site, to)
    _say(copied_lines(copied, shown, site.settings.home))


@contextmanager
def _progress(label: str) -> Iterator[Callable[[float], None] | None]:
    """A progress bar on a terminal; nothing in cron, CI or a pipe."""
    if not sys.stderr.isatty() or os.environ.get("CI"):
        yield None
        return
    with typer.progressbar(length=1000, label=label, file=sys.stderr) as bar:
        shown = 0

        def update(fraction: float) -> None:
            nonlocal shown
            target = int(fraction * 1000)
            if target > shown:
                bar.update(target - shown)
                shown = target

        yield update


@camera_app.command("add")
def camera_add(
    ctx: typer.Context,
    camera_id: Annotated[
        str, typer.Argument(metavar="ID", help=N_("Camera identifier, e.g. C-012."))
    ],
    name: Annotated[str, typer.Option(help=N_("Name shown on exports."))],
    location: Annotated[str, typer.Option(help=N_("Where it films."))],
    commune: Annotated[str, typer.Option(help=N_("Commune."))],
    authorisation_ref: Annotated[
        str, typer.Option(help=N_("Prefectoral authorisation reference."))
    ],
    authorisation_expires: Annotated[
        str, typer.Option(help=N_("Authorisation expiry, YYYY-MM-DD."))
    ],
    retention_days: Annotated[str, typer.Option(help=N_("Retention in days, 1 to 30."))] = "30",
    timezone: Annotated[str, typer.Option(help=N_("Time zone of the camera."))] = "Europe/Paris",
    store_kind: Annotated[
        str, typer.Option(help=N_("Footage store layout: scelle, frigate or template."))
    ] = "scelle",
    store_path: Annotated[
        str, typer.Option(help=N_("Store directory (absolute, or relative to the site)."))
    ] = "footage",
    store_camera: Annotated[
        str | None, typer.Option(help=N_("The camera's name in the store (default: ID)."))
    ] = None,
    clock_offset_ms: Annotated[
        str, typer.Option(help=N_("Recorder clock minus reference clock, in ms."))
    ] = "0",
    clock_measured_at: Annotated[
        str | None, typer.Option(help=N_("When the offset was measured (local time)."))
    ] = None,
    clock_method: Annotated[
        str | None, typer.Option(help=N_("How the offset was measured."))
    ] = None,
    store_template: Annotated[
        str,
        typer.Option(
            help=N_(
                "Template store: the segments' path, e.g. {camera}/{YYYY}{MM}{DD}/{hh}{mm}{ss}.mkv "
                "(README, 'Footage stores')."
            )
        ),
    ] = "",
    store_time: Annotated[
        str, typer.Option(help=N_("Template store: names in utc or local time."))
    ] = "utc",
    reason: Annotated[
        str | None,
        typer.Option(help=N_("Why (recorded in the ledger; default: camera registered).")),
    ] = None,
) -> None:
    """Register a camera (a ledger entry records it); then 'scelle camera check ID'."""
    from requisition.cameras import CameraSpec, add_cameras

    with _open(ctx, Permission.CAMERA_MANAGE) as site:
        spec = CameraSpec(
            camera_id,
            name,
            location,
            commune,
            authorisation_ref,
            authorisation_expires,
            retention_days,
            timezone,
            store_kind,
            store_path,
            store_camera or "",
            clock_offset_ms,
            clock_measured_at or "",
            clock_method or "",
            store_template,
            store_time,
        )
        camera = spec.to_camera(site.settings.home)
        add_cameras(site, [camera], site.login, reason or _("camera registered"))
    typer.echo(
        _("camera {camera} registered (store {kind}: {path})").format(
            camera=camera.id, kind=camera.store_kind, path=camera.store_path
        )
    )


@camera_app.command("import")
def camera_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help=N_("CSV inventory with a header row."))],
) -> None:
    """Import cameras from a CSV file: all of them, or none if one row is bad."""
    from requisition.cameras import import_csv

    with _open(ctx, Permission.CAMERA_MANAGE) as site:
        cameras = import_csv(site, file, site.login)
    typer.echo(
        ngettext(
            "{count} camera imported from {file}",
            "{count} cameras imported from {file}",
            len(cameras),
        ).format(count=len(cameras), file=file)
    )


@camera_app.command("template")
def camera_template() -> None:
    """Print a camera inventory to fill in (CSV, in your language), with one example camera.

    'scelle camera template > cameras.csv', edit it in a spreadsheet, then
    'scelle camera import cameras.csv'."""
    from requisition.cameras import camera_template as template

    typer.echo(template(), nl=False)


@camera_app.command("list")
def camera_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=N_("JSON output."))] = False,
) -> None:
    """Every registered camera."""
    from exporters.render import camera_lines, cameras_json
    from requisition.cameras import list_cameras

    problems: list[str] = []
    with _open(ctx, Permission.READ) as site:
        cameras = list_cameras(site, problems)
    _say((f"warning: {problem}: not listed" for problem in problems), err=True)
    if as_json:
        typer.echo(cameras_json(cameras))
        return
    _say(camera_lines(cameras))


@camera_app.command("check")
def camera_check(
    ctx: typer.Context,
    camera_id: Annotated[str, typer.Argument(metavar="ID", help=N_("Camera identifier."))],
    hours: Annotated[
        str, typer.Option(help=N_("Read the segments of the latest HOURS in full (lengths, gaps)."))
    ] = "24",
) -> None:
    """What the camera's store holds, as its layout reads it: first and last segment,
    count, gaps. Run it after 'scelle camera add', before relying on the store."""
    from custody import text
    from exporters.render import store_check_lines
    from requisition.cameras import check_camera, get_camera

    span = text.whole_number(hours, "--hours", high=10**6)
    with _open(ctx, Permission.FOOTAGE_INDEX) as site:
        camera = get_camera(site, camera_id)
        check = check_camera(site, camera, span, site.login)
    _say(store_check_lines(camera, check, span))
    if not check.segments:
        _fail(
            _(
                "no segment of camera {camera} found in its store by this layout: compare "
                "the path template with the files named above"
            ).format(camera=camera.id),
            ExitCode.ENVIRONMENT,
        )


@camera_app.command("show")
def camera_show(
    ctx: typer.Context,
    camera_id: Annotated[str, typer.Argument(metavar="ID", help=N_("Camera identifier."))],
    as_json: Annotated[bool, typer.Option("--json", help=N_("JSON output."))] = False,
) -> None:
    """One camera, with what the footage index holds of it."""
    from custody.render import json_text
    from exporters.index import footage_summary
    from exporters.render import camera_shown, camera_shown_lines
    from requisition.cameras import get_camera

    with _open(ctx, Permission.READ) as site:
        camera = get_camera(site, camera_id)
        shown = camera_shown(camera, footage_summary(site, camera))
    if as_json:
        typer.echo(json_text(shown))
        return
    _say(camera_shown_lines(shown))


def _window(site: Site, camera_id: str, start: str, end: str) -> tuple[Any, Any]:
    from custody.timewindow import parse_window
    from requisition.cameras import get_camera

    camera = get_camera(site, camera_id)
    return camera, parse_window(start, end, camera.timezone, site.settings.max_window_hours)


@footage_app.command("generate")
def footage_generate(
    ctx: typer.Context,
    camera_id: Annotated[str, typer.Option("--camera", help=N_("Camera identifier."))],
    start: Annotated[str, typer.Option("--from", help=N_("Start, local time of the camera."))],
    end: Annotated[str, typer.Option("--to", help=N_("End, local time of the camera."))],
    segment_seconds: Annotated[
        int | None,
        typer.Option(
            help=N_("Segment length, 1 to 3600 (default: the store's)."),
            parser=_whole("--segment-seconds", low=1, high=3600),
        ),
    ] = None,
    gap: Annotated[
        list[str] | None, typer.Option(help=N_("Leave no footage in START/END (repeatable)."))
    ] = None,
    corrupt: Annotated[
        list[str] | None,
        typer.Option(help=N_("Corrupt the segment holding this time (repeatable).")),
    ] = None,
) -> None:
    """Write synthetic footage into the camera's store, as its recorder would."""
    from custody.timewindow import parse_span, parse_time, to_us
    from exporters.generate import generate_footage
    from exporters.render import generated_lines

    with _open(ctx, Permission.FOOTAGE_GENERATE) as site:
        camera, window = _window(site, camera_id, start, end)
        gaps = [parse_span(g, camera.timezone) for g in gap or []]
        corrupt_at = [to_us(parse_time(t, camera.timezone)) for t in corrupt or []]
        with _progress(_("generating {camera}").format(camera=camera.id)) as progress:
            made = generate_footage(
                site,
                camera,
                window,
                segment_seconds=segment_seconds,
                gaps=gaps,
                corrupt=corrupt_at,
                progress=progress,
            )
    _say(generated_lines(made, camera.id))


@footage_app.command("scan")
def footage_scan(
    ctx: typer.Context,
    camera_ids: Annotated[
        list[str] | None, typer.Option("--camera", help=N_("Only this camera (repeatable)."))
    ] = None,
) -> None:
    """Index new segments: hash each once, record ingest in the ledger by camera and hour.

    A camera whose store cannot be read is named (one line each, exit 6) and the others
    are indexed all the same."""
    from exporters.render import scan_lines
    from requisition.cameras import get_camera, list_cameras, scan_all

    with _open(ctx, Permission.FOOTAGE_INDEX) as site:
        cameras = [get_camera(site, c) for c in camera_ids] if camera_ids else list_cameras(site)
        with _progress(_("scanning")) as progress:
            done = [0]

            def step(_camera: Any) -> None:
                done[0] += 1
                if progress:
                    progress(done[0] / len(cameras))

            report, skipped = scan_all(site, cameras, site.login, progress=step)
    _say(scan_lines(report))
    for camera_id, why in skipped:
        problem = _("camera {camera} not indexed: {why}").format(camera=camera_id, why=why)
        typer.echo(_("scelle: error: {message}").format(message=problem), err=True)
    if skipped:
        raise typer.Exit(int(ExitCode.ENVIRONMENT))


@footage_app.command("find")
def footage_find(
    ctx: typer.Context,
    camera_id: Annotated[str, typer.Argument(metavar="CAMERA", help=N_("Camera identifier."))],
    start: Annotated[str, typer.Option("--from", help=N_("Start, local time of the camera."))],
    end: Annotated[str, typer.Option("--to", help=N_("End, local time of the camera."))],
    reason: Annotated[
        str | None,
        typer.Option(
            help=N_(
                "Why you search: recorded in the ledger as a consultation "
                "(default: search for recordings)."
            )
        ),
    ] = None,
    requisition: Annotated[
        str | None,
        typer.Option(help=N_("The requisition this search serves (its PV is recorded too).")),
    ] = None,
    procedure: Annotated[
        str | None, typer.Option(help=N_("The procedure (PV) number this search serves."))
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help=N_("JSON output."))] = False,
) -> None:
    """The segments, gaps and corrupt parts of a window, before anything is extracted.

    Each search is a consultation of the camera's recordings, recorded in the ledger with
    its reason (décret 2023-1102)."""
    from exporters.render import coverage_lines, coverage_text
    from requisition.consult import consult

    with _open(ctx, Permission.FOOTAGE_FIND) as site:
        camera, window = _window(site, camera_id, start, end)
        coverage = consult(
            site,
            site.login,
            camera,
            window,
            reason,
            requisition=requisition,
            procedure=procedure,
        )
    if as_json:
        typer.echo(coverage_text(coverage))
        return
    _say(coverage_lines(coverage))


def _window_option(text: str) -> tuple[str, str, str]:
    from custody.timewindow import split_window

    return split_window(text)


@requisition_app.command("template")
def requisition_template(ctx: typer.Context) -> None:
    """Print a requisition file to fill in (TOML, commented in your language).

    'scelle requisition template > req.toml', edit it, then
    'scelle requisition register --file req.toml'. Its field names are the options'."""
    from requisition.requisitions import requisition_template as template

    typer.echo(template(_settings(ctx).timezone), nl=False)


@requisition_app.command("register")
def requisition_register(
    ctx: typer.Context,
    file: Annotated[
        Path | None, typer.Option("--file", help=N_("The requisition as TOML or JSON."))
    ] = None,
    legal_basis: Annotated[
        str | None, typer.Option(help=N_("CPP article: 60-1, 77-1-1 or 99-3."))
    ] = None,
    pv: Annotated[str | None, typer.Option("--pv", help=N_("PV / procedure number."))] = None,
    officer: Annotated[
        str | None, typer.Option(help=N_("Requesting officer (name, rank)."))
    ] = None,
    unit: Annotated[str | None, typer.Option(help=N_("Officer's unit."))] = None,
    reason: Annotated[str | None, typer.Option(help=N_("Why the footage is requested."))] = None,
    window: Annotated[
        list[str] | None,
        typer.Option(
            metavar="CAMERA=FROM/TO",
            help=N_(
                "A camera and a time range in local time, e.g. C-012=29/11/2026 14h00/14h10 "
                "(repeatable)."
            ),
        ),
    ] = None,
    received_via: Annotated[
        str | None,
        typer.Option(help=N_("email (default), letter, fax, phone, in-person or platform.")),
    ] = None,
    received_at: Annotated[
        str | None, typer.Option(help=N_("When it arrived (default: now)."))
    ] = None,
    deadline: Annotated[str | None, typer.Option(help=N_("Deadline set by the officer."))] = None,
    prosecutor_authorisation: Annotated[
        str | None, typer.Option(help=N_("Prosecutor's authorisation (required for 77-1-1)."))
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help=N_("Register even if one with this PV and these windows exists.")
        ),
    ] = False,
) -> None:
    """Register a requisition; its footage is held at once, before any approval.

    The same PV number with the same windows is refused (exit 5, naming the requisition
    already registered) unless --force: a file registered twice is not two requisitions."""
    from requisition.render import registered_lines
    from requisition.requisitions import RequisitionRequest, WindowRequest, register

    if file is not None:
        flags = {
            "--legal-basis": legal_basis,
            "--pv": pv,
            "--officer": officer,
            "--unit": unit,
            "--reason": reason,
            "--window": window,
            "--received-via": received_via,
            "--received-at": received_at,
            "--deadline": deadline,
            "--prosecutor-authorisation": prosecutor_authorisation,
        }
        given = [flag for flag, value in flags.items() if value is not None]
        if given:
            _fail(
                _(
                    "--file holds the whole requisition: {options} cannot be added to it "
                    "(edit the file, or give every field as an option without --file)"
                ).format(options=", ".join(given)),
                ExitCode.USAGE,
            )
        request = RequisitionRequest.from_file(file)
    else:
        request = RequisitionRequest(
            legal_basis=legal_basis or "",
            pv_number=pv or "",
            officer_name=officer or "",
            officer_unit=unit or "",
            reason=reason or "",
            windows=tuple(WindowRequest(*_window_option(w)) for w in window or []),
            received_via=received_via or "email",
            received_at=received_at,
            deadline=deadline,
            prosecutor_authorisation=prosecutor_authorisation,
        )
    with _open(ctx, Permission.REGISTER) as site:
        registered = register(site, request, site.login, force=force)
    _say(registered_lines(registered))


def _decide(ctx: typer.Context, requisition_id: str, decision: str, reason: str) -> None:
    from requisition.render import decision_lines
    from requisition.requisitions import decide

    with _open(ctx, Permission.REGISTER if decision == "cancel" else Permission.DECIDE) as site:
        actor = site.login
        outcome = decide(site, requisition_id, decision, actor, reason)
    _say(decision_lines(outcome, actor))


@requisition_app.command("approve")
def requisition_approve(
    ctx: typer.Context,
    requisition_id: Annotated[str, typer.Argument(metavar="ID")],
    reason: Annotated[
        str | None, typer.Option(help=N_("Why (recorded; default: requisition in order)."))
    ] = None,
) -> None:
    """Approve a received requisition (a supervisor other than who registered it)."""
    _decide(ctx, requisition_id, "approve", reason or _("requisition in order"))


@requisition_app.command("deny")
def requisition_deny(
    ctx: typer.Context,
    requisition_id: Annotated[str, typer.Argument(metavar="ID")],
    reason: Annotated[str, typer.Option(help=N_("Why (recorded, required)."))],
) -> None:
    """Deny a received requisition (a supervisor other than who registered it)."""
    _decide(ctx, requisition_id, "deny", reason)


@requisition_app.command("cancel")
def requisition_cancel(
    ctx: typer.Context,
    requisition_id: Annotated[str, typer.Argument(metavar="ID")],
    reason: Annotated[str, typer.Option(help=N_("Why (recorded, required)."))],
) -> None:
    """Cancel a received requisition (withdrawn by the officer, duplicate...)."""
    _decide(ctx, requisition_id, "cancel", reason)


@requisition_app.command("attach")
def requisition_attach(
    ctx: typer.Context,
    requisition_id: Annotated[str, typer.Argument(metavar="ID")],
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="PATH...",
            help=N_("The other system's files or folders (clip, player, its signatures)."),
        ),
    ],
    system: Annotated[
        str, typer.Option(help=N_("The system that exported them (name, e.g. its vendor's)."))
    ],
    exported_by: Annotated[str, typer.Option(help=N_("Who exported them from that system."))],
    exported_at: Annotated[
        str, typer.Option(help=N_("When that system exported them (local time)."))
    ],
    start: Annotated[
        str, typer.Option("--from", help=N_("Start of the window they cover (local time)."))
    ],
    end: Annotated[
        str, typer.Option("--to", help=N_("End of the window they cover (local time)."))
    ],
    system_version: Annotated[str, typer.Option(help=N_("That system's version."))] = "",
    export_id: Annotated[str, typer.Option(help=N_("That system's export number."))] = "",
    camera: Annotated[str, typer.Option(help=N_("The camera, as that system names it."))] = "",
) -> None:
    """Take another system's own export into custody for a requisition: kept bit for bit,
    hashed, recorded in the ledger with where it came from, delivered in the export."""
    from requisition.attachments import Provenance, attach
    from requisition.render import attached_lines

    given = Provenance(
        system, exported_by, exported_at, start, end, system_version, export_id, camera
    )
    with _open(ctx, Permission.EXTRACT) as site:
        attachment, seq = attach(site, requisition_id, paths, given, site.login)
    _say(attached_lines(requisition_id, attachment, seq))


@requisition_app.command("extract")
def requisition_extract(
    ctx: typer.Context,
    requisition_id: Annotated[str, typer.Argument(metavar="ID")],
    out: Annotated[Path, typer.Option("--out", help=N_("Directory to write <ID>/ into."))],
    stream_copy: Annotated[
        bool, typer.Option(help=N_("Working copy by stream copy (fast, cut on key frames)."))
    ] = False,
    burn_in: Annotated[
        bool, typer.Option(help=N_("Burn the camera label and corrected local time in."))
    ] = True,
) -> None:
    """Build the signed export package of an approved requisition, atomically."""
    from requisition.extract import extract
    from requisition.render import extracted_lines

    with _open(ctx, Permission.EXTRACT) as site:
        papers = _papers(site)
        with _progress(
            _("extracting {requisition}").format(requisition=requisition_id)
        ) as progress:
            built = extract(
                site,
                requisition_id,
                out,
                papers.signer,
                site.login,
                papers=papers,
                burn_in=burn_in,
                stream_copy=stream_copy,
                progress=progress,
            )
    _say(extracted_lines(built))


@requisition_app.command("handover")
def requisition_handover(
    ctx: typer.Context,
    requisition_id: Annotated[str, typer.Argument(metavar="ID")],
    officer: Annotated[str, typer.Option(help=N_("Receiving officer's name."))],
    unit: Annotated[str, typer.Option(help=N_("Receiving unit."))],
    medium: Annotated[str, typer.Option(help=N_("usb, dvd or download."))],
    seal: Annotated[
        list[str], typer.Option("--seal", help=N_("Seal (scellé) number; once per seal."))
    ],
    grade: Annotated[
        str | None, typer.Option(help=N_("Receiving officer's grade (lieutenant, OPJ...)."))
    ] = None,
    count: Annotated[
        int | None, typer.Option(help=N_("How many media (default: one per seal)."))
    ] = None,
    at: Annotated[str | None, typer.Option(help=N_("When (local time; default: now)."))] = None,
) -> None:
    """Record the handover of the sealed export and issue its signed PV de remise: to
    whom, when, on what, under which seals."""
    from custody.timewindow import people_text
    from requisition.handover import Handover, handover
    from requisition.papers import paper_signer

    given = Handover(officer, unit, medium, seal, at, grade, count)
    with _open(ctx, Permission.HANDOVER) as site:
        done = handover(site, requisition_id, given, site.login, paper_signer(site, _passphrase()))
    typer.echo(
        _("requisition {requisition} handed over to {officer} at {time}").format(
            requisition=done.requisition.id,
            officer=done.requisition.handed_to,
            time=people_text(done.requisition.handed_at, site.settings.timezone),
        )
    )
    typer.echo(_("PV de remise: {pdf}").format(pdf=done.pv))


@requisition_app.command("list")
def requisition_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=N_("JSON output."))] = False,
) -> None:
    """Every requisition and its state."""
    from requisition.render import requisition_lines, requisitions_json
    from requisition.requisitions import list_all

    with _open(ctx, Permission.READ) as site:
        found = list_all(site)
    if as_json:
        typer.echo(requisitions_json(found))
        return
    _say(requisition_lines(found))


@requisition_app.command("show")
def requisition_show(
    ctx: typer.Context,
    requisition_id: Annotated[str, typer.Argument(metavar="ID")],
    as_json: Annotated[bool, typer.Option("--json", help=N_("JSON output."))] = False,
) -> None:
    """One requisition: state, windows, holds, export."""
    from custody.render import json_text
    from requisition.render import shown_lines
    from requisition.requisitions import as_json as requisition_json
    from requisition.requisitions import get

    with _open(ctx, Permission.READ) as site:
        shown = requisition_json(site, get(site, requisition_id))
    if as_json:
        typer.echo(json_text(shown))
        return
    _say(shown_lines(shown, site.settings.timezone))


@export_app.command("copy")
def export_copy(
    ctx: typer.Context,
    requisition_id: Annotated[str, typer.Argument(metavar="ID")],
    to: Annotated[Path, typer.Option("--to", help=N_("Mounted removable medium (directory)."))],
) -> None:
    """Copy an export to removable media, then read the copy back and verify it.

    What an interrupted copy of the same export left on the medium is removed first
    (and named). A medium without room for the export: one line, exit 6, nothing left.
    """
    from requisition.extract import copy_export
    from requisition.render import copied_lines

    with _open(ctx, Permission.HANDOVER) as site:
        copied = copy_export(site, requisition_id, to, site.login)
    _say(copied_lines(copied))


@app.command("verify")
def verify_cmd(
    directory: Annotated[Path, typer.Argument(help=N_("The export directory (<ID>/)."))],
    key: Annotated[
        str | None,
        typer.Option("--key", help=N_("Expected key fingerprint, from the signed cover sheet.")),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help=N_("JSON output: checks, complete, gaps, withheld."))
    ] = False,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy", help=N_("A witness policy (C2SP tlog-policy): check the cosignatures.")
        ),
    ] = None,
    tsa_ca: Annotated[
        Path | None,
        typer.Option(
            "--tsa-ca",
            help=N_("The timestamping authority's CA you trust (PEM; default: the export's)."),
        ),
    ] = None,
) -> None:
    """Check an export: signatures, every file, no file added or missing, ledger proof.

    Each check is named by an id (signature, files, inclusion, …), the same in every
    language and in the export's VERIFY.html page. Exit 0: verified and complete. Exit 10:
    verified but PARTIAL, each gap named (camera, period, kind): authentic, and says itself
    what it lacks (--json: "status": "partial"). Exit 4 if any check fails.
    """
    from custody.checks import VerificationFailedError
    from custody.policy import read_policy
    from custody.render import json_text
    from exporters.verify_export import (
        completeness_lines,
        report_json,
        status,
        timestamp_lines,
        verdict,
        verify_export,
        witness_lines,
    )

    witnesses = read_policy(policy) if policy is not None else None
    try:
        trusted_ca = tsa_ca.read_bytes() if tsa_ca is not None else None
    except OSError as exc:
        _fail(
            _("cannot read {path}: {reason}").format(path=tsa_ca, reason=exc.strerror),
            ExitCode.INPUT,
        )
    try:
        report = verify_export(directory, key, witnesses, trusted_ca)
    except VerificationFailedError as failed:
        if as_json:
            typer.echo(json_text(report_json(failed.report)))
        else:
            _show_report(failed.report, "export")
        raise
    if as_json:
        typer.echo(json_text(report_json(report)))
    else:
        _show_report(report, "export")
        _say(completeness_lines(report))
        _say(timestamp_lines(report))
        _say(witness_lines(report))
        typer.echo(verdict(report))
    if status(report) == "partial":
        raise typer.Exit(int(ExitCode.VERIFIED_PARTIAL))


def _show_report(report: Report, what: str) -> None:
    """Every check, OK or FAIL; a warning on stderr when the key was not pinned."""
    from custody.render import check_lines, unpinned_warning

    _say(check_lines(report, what))
    warning = unpinned_warning(report, what)
    if warning:
        typer.echo(warning, err=True)


OutOption = Annotated[
    Path | None, typer.Option("--out", help=N_("Directory (default: <site>/documents)."))
]


@doc_app.command("cover")
def doc_cover(
    ctx: typer.Context,
    requisition_id: Annotated[str, typer.Argument(metavar="ID")],
    out: OutOption = None,
) -> None:
    """The cover sheet of a requisition's export: what the sealed export holds."""
    from requisition.issue import issue_cover
    from requisition.render import issued_lines

    with _open(ctx, Permission.DOCUMENT) as site:
        issued = issue_cover(site, requisition_id, site.login, _papers(site), out)
    _say(issued_lines(issued))


@doc_app.command("label")
def doc_label(
    ctx: typer.Context,
    requisition_id: Annotated[str, typer.Argument(metavar="ID")],
    seal: Annotated[
        str | None, typer.Option(help=N_("Seal number (default: the handover's)."))
    ] = None,
    medium: Annotated[str | None, typer.Option(help=N_("usb, dvd or download."))] = None,
    out: OutOption = None,
) -> None:
    """The seal labels (A6, one per seal): seal, date, requisition, PV, cameras, periods,
    manifest hash and QR, space to sign and stamp."""
    from requisition.issue import issue_label
    from requisition.render import issued_lines

    with _open(ctx, Permission.DOCUMENT) as site:
        issued = issue_label(site, requisition_id, site.login, _papers(site), seal, medium, out)
    _say(issued_lines(issued))


@doc_app.command("register")
def doc_register(
    ctx: typer.Context,
    start: Annotated[str, typer.Option("--from", help=N_("First day, YYYY-MM-DD."))],
    end: Annotated[str, typer.Option("--to", help=N_("Last day, YYYY-MM-DD (included)."))],
    out: OutOption = None,
) -> None:
    """The register of recordings for a period: recordings, destructions, transmissions."""
    from requisition.issue import issue_register
    from requisition.render import issued_lines

    with _open(ctx, Permission.DOCUMENT) as site:
        issued = issue_register(site, start, end, site.login, _papers(site), out)
    _say(issued_lines(issued))


@hold_app.command("place")
def hold_place(
    ctx: typer.Context,
    camera_id: Annotated[str, typer.Option("--camera", help=N_("Camera identifier."))],
    start: Annotated[str, typer.Option("--from", help=N_("Start, local time of the camera."))],
    end: Annotated[str, typer.Option("--to", help=N_("End, local time of the camera."))],
    reason: Annotated[str, typer.Option(help=N_("Why (recorded, required)."))],
    procedure: Annotated[str | None, typer.Option(help=N_("PV or procedure number."))] = None,
) -> None:
    """Hold a camera's footage for a window, whatever its retention."""
    from requisition.holds import place

    with _open(ctx, Permission.HOLD_PLACE) as site:
        camera, window = _window(site, camera_id, start, end)
        hold = place(site, camera.id, window, reason, procedure, site.login)
    typer.echo(
        _("hold {hold} placed on camera {camera}").format(hold=hold.id, camera=hold.camera_id)
    )


@hold_app.command("list")
def hold_list(
    ctx: typer.Context,
    released: Annotated[bool, typer.Option("--all", help=N_("Include released holds."))] = False,
    as_json: Annotated[bool, typer.Option("--json", help=N_("JSON output."))] = False,
) -> None:
    """Active holds (with --all, released ones too)."""
    from custody.render import json_text
    from requisition.holds import list_holds
    from requisition.render import hold_lines, hold_rows

    with _open(ctx, Permission.READ) as site:
        holds = list_holds(site, active_only=not released)
    if as_json:
        typer.echo(json_text(hold_rows(holds)))
        return
    _say(hold_lines(holds, site.settings.timezone))


@hold_app.command("release")
def hold_release(
    ctx: typer.Context,
    hold_id: Annotated[int, typer.Argument(metavar="HOLD", parser=_whole("HOLD"))],
    reason: Annotated[str, typer.Option(help=N_("Why (recorded, required)."))],
) -> None:
    """Release a hold (a supervisor other than who placed it)."""
    from requisition.holds import release

    with _open(ctx, Permission.HOLD_RELEASE) as site:
        hold = release(site, hold_id, reason, site.login)
    typer.echo(_("hold {hold} released by {agent}").format(hold=hold.id, agent=hold.released_by))


@app.command()
def purge(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help=N_("Say what would go; change nothing."))
    ] = False,
    now: Annotated[
        str | None,
        typer.Option(
            "--now", help=N_("With --dry-run: plan as of this local time (default: now).")
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help=N_("JSON output."))] = False,
) -> None:
    """Destroy footage past its retention unless held; for cron or a systemd timer.

    A real purge always runs as of the system clock: footage inside its retention is
    never destroyed. An interrupted purge is finished first, against the holds then in
    force."""
    if now is not None and not dry_run:
        _fail(
            _("--now only with --dry-run: a purge destroys footage as of the clock"), ExitCode.USAGE
        )
    from custody.render import json_text
    from custody.timewindow import parse_time, to_us
    from requisition.purge import lines as purge_lines
    from requisition.purge import purge as run_purge
    from requisition.purge import summary

    with _open(ctx, Permission.PURGE) as site:
        moment = to_us(parse_time(now, site.settings.timezone)) if now else None
        # Unattended (no passphrase at hand, a key agent running): the agent makes the
        # certificates from what the run recorded, once it is done.
        by_agent = not dry_run and not _passphrase_at_hand() and _agent_running(site)
        papers = None if dry_run or by_agent else _papers(site)
        report = run_purge(
            site,
            site.login,
            moment,
            dry_run=dry_run,
            signer=papers.signer if papers else None,
            pdf=papers.pdf if papers else None,
        )
        if by_agent:
            from requisition.key_agent import certificates_by_agent

            certificates_by_agent(site, report)
    if as_json:
        typer.echo(json_text(summary(report)))
    else:
        _say(purge_lines(report))
        _say((f"FAILED {failure}" for failure in report.failures), err=True)
    if report.failures:
        raise typer.Exit(int(ExitCode.PARTIAL))
    if report.nothing_to_do:
        if not as_json:
            typer.echo(_("nothing to do"))
        raise typer.Exit(int(ExitCode.NOTHING_TO_DO))


@app.command("status")
def status_cmd(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=N_("JSON output."))] = False,
) -> None:
    """Holds, footage about to expire under a pending requisition, the last purge."""
    from custody.render import json_text
    from requisition.render import status_lines
    from requisition.status import status

    with _open(ctx, Permission.READ) as site:
        shown = status(site)
    if as_json:
        typer.echo(json_text(shown))
        return
    _say(status_lines(shown, site.settings.timezone))


@app.command("audit")
def audit_cmd(
    ctx: typer.Context,
    agent: Annotated[str | None, typer.Option(help=N_("Only this agent's login."))] = None,
    camera: Annotated[str | None, typer.Option(help=N_("Only entries about this camera."))] = None,
    requisition: Annotated[str | None, typer.Option(help=N_("Only this requisition."))] = None,
    procedure: Annotated[
        str | None, typer.Option(help=N_("Only this procedure (PV) number."))
    ] = None,
    action: Annotated[
        str | None, typer.Option(help=N_("An action, or a family: footage.extract, footage, ..."))
    ] = None,
    since: Annotated[
        str | None, typer.Option("--from", help=N_("From this local time or date (inclusive)."))
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--to", help=N_("Until this local time (excluded) or date (included).")),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help=N_("JSON output."))] = False,
    as_csv: Annotated[
        bool,
        typer.Option(
            "--csv",
            help=N_("CSV for a spreadsheet: opens as it is in French Excel (UTF-8, semicolons)."),
        ),
    ] = False,
    rfc4180: Annotated[
        bool,
        typer.Option(
            "--rfc4180",
            help=N_("With --csv: RFC 4180 for scripts (commas, UTF-8 without mark, JSON names)."),
        ),
    ] = False,
    reason: Annotated[str, typer.Option(help=N_("Why you ask: recorded in the ledger."))] = "audit",
) -> None:
    """Who accessed which recordings of which camera, when, why, for which procedure and
    receiving unit: answered from the ledger, each row re-read from its entry."""
    from custody.audit import AuditFilter
    from custody.audit_query import ask, period_bound
    from custody.render import audit_csv, audit_json, audit_lines

    if as_json and as_csv:
        _fail(_("choose one of --json and --csv"), ExitCode.USAGE)
    if rfc4180 and not as_csv:
        _fail(_("--rfc4180 is a form of --csv: add --csv"), ExitCode.USAGE)
    with _open(ctx, Permission.AUDIT) as site:
        zone = site.settings.timezone
        wanted = AuditFilter(
            agent=agent,
            camera=camera,
            requisition=requisition,
            procedure=procedure,
            action=action,
            since=period_bound(since, zone, "--from"),
            until=period_bound(until, zone, "--to"),
        )
        rows = ask(site.ledger, site.login, wanted, reason)
    if as_json:
        typer.echo(audit_json(rows))
    elif as_csv:
        typer.echo(audit_csv(rows, zone, rfc4180=rfc4180), nl=False)
    else:
        _say(audit_lines(rows, zone))
        count = len(rows)
        typer.echo(
            ngettext("{count} entry", "{count} entries", count).format(count=count), err=True
        )


@agent_app.command("add")
def agent_add(
    ctx: typer.Context,
    login: Annotated[
        str, typer.Argument(help=N_("OS login, or PostgreSQL role on a shared database."))
    ],
    role: Annotated[str, typer.Option(help=N_("operator, supervisor, auditor or admin."))],
    designation: Annotated[
        str, typer.Option(help=N_("Reference of the designation order (arrêté, décision)."))
    ],
    surname: Annotated[
        str | None,
        typer.Option(help=N_("Surname, as on the designation (the access log records it).")),
    ] = None,
    first_name: Annotated[
        str | None,
        typer.Option(help=N_("First name, as on the designation (the access log records it).")),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            help=N_(
                "Instead of --surname and --first-name (earlier scripts): the whole name, "
                "kept as the surname with no first name."
            )
        ),
    ] = None,
) -> None:
    """Designate an agent (administrators only): their surname and first name, role and
    designation order."""
    from requisition.agents import NewAgent, add
    from requisition.words import label

    if name is not None and (surname is not None or first_name is not None):
        _fail(_("give --surname and --first-name, or --name, not both"), ExitCode.USAGE)
    if name is None and surname is None:
        _fail(_("give the agent's --surname and --first-name"), ExitCode.USAGE)
    given = NewAgent(login, name or "", role, designation, surname or "", first_name or "")
    with _open(ctx, Permission.AGENT_MANAGE) as site:
        agent = add(site, site.login, given)
    typer.echo(
        _("agent {login} ({name}) designated as {role}").format(
            login=agent.login, name=agent.name, role=label("role", agent.role)
        )
    )
    if not agent.first_name:
        typer.echo(
            _(
                "warning: no first name recorded for {login}; the access log wants one "
                "('scelle agent rename {login} --surname ... --first-name ...')"
            ).format(login=agent.login),
            err=True,
        )


@agent_app.command("rename")
def agent_rename(
    ctx: typer.Context,
    login: Annotated[str, typer.Argument(help=N_("The agent's login."))],
    surname: Annotated[str, typer.Option(help=N_("Surname, as on the designation."))],
    first_name: Annotated[str, typer.Option(help=N_("First name, as on the designation."))],
    reason: Annotated[str, typer.Option(help=N_("Why the name changes."))],
) -> None:
    """Record an agent's surname and first name anew (administrators only): earlier
    entries keep the name they were written under."""
    from requisition.agents import rename

    with _open(ctx, Permission.AGENT_MANAGE) as site:
        agent = rename(site, site.login, login, surname, first_name, reason)
    typer.echo(_("agent {login} now named {name}").format(login=agent.login, name=agent.name))


@agent_app.command("disable")
def agent_disable(
    ctx: typer.Context,
    login: Annotated[str, typer.Argument(help=N_("The agent's login."))],
    reason: Annotated[str, typer.Option(help=N_("Why the designation ends."))],
) -> None:
    """Withdraw an agent's designation: they stay listed and can no longer act."""
    from requisition.agents import disable

    with _open(ctx, Permission.AGENT_MANAGE) as site:
        agent = disable(site, site.login, login, reason)
    typer.echo(_("agent {login} disabled").format(login=agent.login))


@agent_app.command("list")
def agent_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=N_("JSON output."))] = False,
) -> None:
    """The agents register: login, name, role, designation, status."""
    from requisition.agents import list_all
    from requisition.render import agent_lines, agents_json

    with _open(ctx, Permission.READ) as site:
        agents = list_all(site)
    if as_json:
        typer.echo(agents_json(agents))
        return
    _say(agent_lines(agents))


@app.command()
def demo(
    site: Annotated[
        Path | None,
        typer.Option("--site", help=N_("New or empty directory (default: a temporary one).")),
    ] = None,
) -> None:
    """Build a demo site from nothing and show every part of scelle working."""
    from requisition.demo import next_steps, run_demo

    _say(next_steps(run_demo(site, typer.echo)))


# Every text typed on the command line is checked before the command runs (custody.text):
# printable, on one line (a reason may take several), of a sensible length; a path holds
# no control character. The library checks the same of what files provide. A NUL typed
# here was stored by SQLite and broke `db copy` to PostgreSQL months later.
_PROSE = frozenset({"reason"})
_LONG = frozenset({"to", "database_url"})  # URLs (db copy --to) may be long


def _label(name: str, hint: Any) -> str:
    """How the user wrote parameter `name`: `--pv`, `--from`, `SUBJECT`."""
    for info in getattr(hint, "__metadata__", ()):
        if isinstance(info, typer.models.ArgumentInfo):
            return info.metavar or name.upper()
        if isinstance(info, typer.models.OptionInfo):
            decls = [info.default, *(info.param_decls or ())]
            return next(
                (d for d in decls if isinstance(d, str) and d.startswith("--")),
                f"--{name.replace('_', '-')}",
            )
    return f"--{name.replace('_', '-')}"


def _checked_inputs(command: Callable[..., Any]) -> Callable[..., Any]:
    """`command`, refusing first (one line, exit 3) a text argument custody.text refuses."""
    import functools
    import typing

    from custody import text

    @functools.cache
    def labels() -> dict[str, str]:  # read when the command runs: every start pays for one
        hints = typing.get_type_hints(command, include_extras=True)
        return {name: _label(name, hint) for name, hint in hints.items() if name != "return"}

    @functools.wraps(command)
    def checked(*args: Any, **kwargs: Any) -> Any:
        for name, value in kwargs.items():
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(item, Path):
                    text.path_text(str(item), labels()[name])
                elif isinstance(item, str) and name in _PROSE:
                    text.prose(item, labels()[name])
                elif isinstance(item, str):
                    limit = text.PATH_MAX if name in _LONG else text.LINE_MAX
                    text.line(item, labels()[name], limit)
        return command(*args, **kwargs)

    return checked


def _check_inputs_of(group: typer.Typer) -> None:
    callback = group.registered_callback  # the global options: --home, --database-url
    if callback is not None and callback.callback is not None:
        callback.callback = _checked_inputs(callback.callback)
    for command in group.registered_commands:
        if command.callback is not None:
            command.callback = _checked_inputs(command.callback)
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _check_inputs_of(sub.typer_instance)


_check_inputs_of(app)


_ROOT_VALUES = frozenset({"--home", "--database-url"})  # the global options that take a value


def narrowed(args: Sequence[str], group: typer.Typer = app) -> typer.Typer:
    """`group` holding only the command that `args` name, with the groups on its way.

    typer makes the click command of every command at each start (each signature read,
    each option made): tens of milliseconds for sixty commands, when one runs. Anything
    but a command named in full (no command, an option first, an unknown or partial
    name, a group's own help) keeps the whole of that group, so that help and usage
    errors list every command as before."""
    rest = list(args)
    while rest and group is app and rest[0].startswith("-"):  # the global options
        option = rest.pop(0)
        if option in _ROOT_VALUES and rest:
            rest.pop(0)
        elif option != "--debug" and option.partition("=")[0] not in _ROOT_VALUES:
            return group  # --help, --version, or a mistake: the framework says which
    if not rest or rest[0].startswith("-"):
        return group
    name = rest[0]
    for command in group.registered_commands:
        callback = command.callback
        named = command.name or (callback and typer.main.get_command_name(callback.__name__))
        if named == name:
            return _holding(group, [command], [])
    for sub in group.registered_groups:
        if sub.name == name and sub.typer_instance is not None:
            inner = narrowed(rest[1:], sub.typer_instance)
            return _holding(group, [], [copy.copy(sub)], inner)
    return group


def _holding(
    group: typer.Typer,
    commands: list[Any],
    groups: list[Any],
    inner: typer.Typer | None = None,
) -> typer.Typer:
    """A copy of `group` with only these commands and groups (its callback kept)."""
    held = copy.copy(group)
    held.registered_commands = commands
    held.registered_groups = groups
    for sub in groups:
        sub.typer_instance = inner
    return held


def main() -> None:
    """Console entry point: runs the command `sys.argv` names (see `narrowed`)."""
    narrowed(sys.argv[1:])()


if __name__ == "__main__":
    main()
