"""User errors end in one or two lines that name the problem and the fix, exit code 2, no traceback.

Every entry point runs through ``run_cli`` (argparse tools) or ``hydra_cli`` (Hydra tools). A user
error is ``UserError`` or one of the plain errors our checks raise (ValueError, FileNotFoundError,
...), possibly wrapped by Hydra's instantiation; anything else is a bug and keeps its traceback.
``--debug`` (or ``HYDRA_FULL_ERROR=1``) shows the traceback of user errors too.

Before a Hydra tool does any work, its command-line overrides are checked against the composed config,
so a misspelt key gets the nearest real key, ``model.net=resnet`` gets ``model/net=resnet``, and an
unknown option gets the list of options, instead of Hydra's advice to add a key that then fails.
"""

from __future__ import annotations

import difflib
import inspect
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

from denoiselab.core.errors import UserError, user_error_of


class Refusal(UserError):
    """An error already phrased for the user (raised by the override check)."""


def debug_requested(argv: list[str], hydra: bool = False) -> bool:
    """--debug, or for the Hydra tools Hydra's own HYDRA_FULL_ERROR=1."""
    return "--debug" in argv or (hydra and os.environ.get("HYDRA_FULL_ERROR") == "1")


def message_of(err: BaseException) -> str:
    """The error's own words, at most two lines, without Hydra's 'full_key:' trailers."""
    lines = [ln.rstrip() for ln in str(err).strip().splitlines()
             if ln.strip() and not ln.strip().startswith(("full_key:", "object_type=", "Error in call to target"))]
    text = " ".join(lines[:2]) if lines else type(err).__name__
    return text if len(text) < 600 else text[:597] + "..."


def report(prog: str, err: BaseException) -> int:
    print(f"{prog}: error: {message_of(err)}", file=sys.stderr)
    print(f"{prog}: (run with --debug for the full traceback)", file=sys.stderr)
    return 2


def run_cli(prog: str, main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run an argparse entry point; user errors become two lines and exit code 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(args)
    args = [a for a in args if a != "--debug"]
    quiet_libraries()
    try:
        return main(args)
    except Exception as exc:  # noqa: BLE001 - sorted by _exit_code: user errors vs bugs
        return _exit_code(prog, exc, debug)


def _exit_code(prog: str, exc: Exception, debug: bool) -> int:
    """2 after reporting a user error in two lines; anything else (and everything with --debug) raises."""
    err = user_error_of(exc)
    if err is None or debug:
        raise exc
    return report(prog, err)


def hydra_cli(prog: str, config_name: str, task: Callable[[Any], Any]) -> Callable[[], Any]:
    """A console-script main for a Hydra task: checks the overrides, runs the task under Hydra, and
    turns user errors (raised by the task) into two lines and exit code 2."""

    def main() -> Any:
        import hydra

        from denoiselab.cli.config import CONFIG_DIR

        debug = debug_requested(sys.argv[1:], hydra=True)
        sys.argv = [a for a in sys.argv if a != "--debug"]
        quiet_libraries()
        overrides = [a for a in sys.argv[1:] if not a.startswith("-")]
        if not any(a in ("--help", "-h", "--hydra-help", "--info", "--cfg", "-c") for a in sys.argv[1:]):
            try:
                check_overrides(config_name, overrides)
            except Refusal as err:
                if debug:
                    raise
                sys.exit(report(prog, err))

        @hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=config_name)
        def hydra_main(cfg):
            quiet_libraries()  # again: Hydra has set up its log handlers by now
            try:
                return task(cfg)
            except Exception as exc:  # noqa: BLE001 - sorted by _exit_code: user errors vs bugs
                sys.exit(_exit_code(prog, exc, debug))

        return hydra_main()

    return main


def quiet_libraries() -> None:
    """Filter what no user can act on: Lightning's tips and hardware banners, known-harmless
    warnings (the lists are short and specific: anything else still shows)."""
    import logging

    class _Drop(logging.Filter):
        NOISE = ("💡 Tip", "Tip: For seamless", "GPU available:", "TPU available:", "HPU available:",
                 "LOCAL_RANK:", "`Trainer.fit` stopped:", "Trainer already configured", "You are using a CUDA",
                 "Seed set to")

        def filter(self, record: logging.LogRecord) -> bool:
            return not any(n in record.getMessage() for n in self.NOISE)

    drop = _Drop()
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                 "lightning.fabric.utilities.seed", "lightning_fabric.utilities.seed"):
        logging.getLogger(name).addFilter(drop)
    for handler in logging.getLogger().handlers:  # messages that reach a handler from any other logger
        if not any(isinstance(f, _Drop) for f in handler.filters):
            handler.addFilter(drop)
    for message in (".*does not have many workers.*", ".*smaller than the logging interval.*",
                    ".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*", ".*is deprecated.*torch.export.*",
                    ".*At least one mel filterbank has all zero values.*", ".*TracerWarning.*",
                    ".*The `srun` command is available on your system.*",
                    ".*Checkpoint directory .* exists and is not empty.*",
                    ".*Please use the new API settings to control TF32.*", ".*`torch.jit.*` is deprecated.*",
                    ".*`max_epochs` was not set.*"):
        warnings.filterwarnings("ignore", message=message)


# ---------------------------------------------------------------------- override check
def check_overrides(config_name: str, overrides: Sequence[str]) -> None:
    """Compose the config with the plain overrides (sweeps and hydra.* left to Hydra) and raise a
    Refusal that names the fix for the mistakes users make."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException, MissingConfigException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    from denoiselab.cli.config import CONFIG_DIR

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except OverrideParseException as err:
        raise Refusal(f"cannot read the command line: {message_of(err)}") from None
    plain, groups = [], _groups(CONFIG_DIR)
    for o in parsed:
        key = o.key_or_group
        if key.startswith("hydra") or o.is_sweep_override():
            continue
        value = o.value() if not o.is_sweep_override() else None
        slash = key.replace(".", "/")
        if "." in key and slash in groups and isinstance(value, str) and value in groups[slash]:
            raise Refusal(f"{key}={value} would set a value inside the config; to choose the {slash} option "
                          f"'{value}', write {slash}={value} (a slash, not a dot)")
        plain.append(o.input_line)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            try:
                cfg = compose(config_name, overrides=plain)
            except MissingConfigException as err:
                raise Refusal(_missing_option(err, groups)) from None
            except (HydraException, OmegaConfBaseException) as err:
                raise Refusal(_bad_key(err, plain, config_name)) from None
            choices = [o.input_line for o in parsed if o.input_line in plain
                       and ("/" in o.key_or_group or o.key_or_group in groups)]
            base = compose(config_name, overrides=choices)
    finally:
        GlobalHydra.instance().clear()
    _check_types(parsed, base, cfg)


def _check_types(parsed, base, cfg) -> None:
    """A number or switch given a word (trainer.max_steps=abc) is refused here, not deep in a library."""
    from omegaconf import OmegaConf

    for o in parsed:
        key = o.key_or_group
        if key.startswith("hydra") or o.is_sweep_override() or "/" in key or key == "experiment":
            continue
        try:
            old, new = OmegaConf.select(base, key), OmegaConf.select(cfg, key)
        except Exception:  # noqa: BLE001 - interpolations resolve later; nothing to compare
            continue
        if isinstance(old, bool) and not isinstance(new, bool):
            raise Refusal(f"{key}={new!r}: expected true or false (the default is {str(old).lower()})")
        if isinstance(old, (int, float)) and not isinstance(old, bool) and isinstance(new, str):
            kind = "a whole number" if isinstance(old, int) else "a number"
            raise Refusal(f"{key}={new!r} could not be converted to {kind} (the default is {old})")


def _groups(conf: Path) -> dict[str, list[str]]:
    """Config group -> its options (yaml files)."""
    out: dict[str, list[str]] = {}
    for d in conf.rglob("*"):
        if d.is_dir() and not d.name.startswith(("_", ".")):
            options = sorted(p.stem for p in d.glob("*.yaml"))
            if options:
                out[d.relative_to(conf).as_posix()] = options
    return out


def _missing_option(err: Exception, groups: dict[str, list[str]]) -> str:
    text = str(err)
    for group, options in sorted(groups.items(), key=lambda g: -len(g[0])):
        marker = f"'{group}/"
        if marker in text:
            wrong = text.split(marker, 1)[1].split("'", 1)[0]
            near = difflib.get_close_matches(wrong, options, n=1)
            hint = f" (did you mean {group}={near[0]}?)" if near else ""
            return f"{group}={wrong} is not an option{hint}; choose one of: {', '.join(options)}"
    return message_of(err)


def _bad_key(err: Exception, overrides: Sequence[str], config_name: str) -> str:
    """'trainer.max_step' -> 'did you mean trainer.max_steps?', from the keys the config has."""
    text = str(err)
    key = None
    for line in text.splitlines():
        if line.strip().startswith("full_key:"):
            key = line.split(":", 1)[1].strip()
    if key is None:
        for o in overrides:
            if f"'{o.split('=')[0].lstrip('+~')}'" in text:
                key = o.split("=")[0].lstrip("+~")
    if key is None or "not in struct" not in text and "Could not override" not in text:
        return message_of(err)
    parent, _, leaf = key.rpartition(".")
    others = [o for o in overrides if o.split("=")[0].lstrip("+~") != key]
    known = _keys_of(config_name, parent, others)
    near = difflib.get_close_matches(leaf, known, n=1, cutoff=0.6)
    if near:
        return f"{key} is not a setting; did you mean {parent + '.' if parent else ''}{near[0]}?"
    accepted = _target_arguments(config_name, parent, others)
    if leaf in accepted:
        return (f"{key} is not in the config, but {parent}'s class accepts it: add it with "
                f"+{key}=VALUE")
    if parent and not known:
        return f"{key} is not a setting: this config has no {parent} settings"
    where = f"{parent}'s settings" if parent else "top-level settings"
    return f"{key} is not a setting; {where}: {', '.join(sorted(known)[:30])}"


def _composed(config_name: str, overrides: Sequence[str] = ()):
    """The config as the user's other overrides compose it (experiment=device_eval brings nodes that
    the bare config lacks); the bare config where they do not compose."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from denoiselab.cli.config import CONFIG_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        try:
            return compose(config_name, overrides=list(overrides))
        except Exception:  # noqa: BLE001 - best effort for a hint
            return compose(config_name)


def _keys_of(config_name: str, parent: str, overrides: Sequence[str] = ()) -> list[str]:
    from omegaconf import DictConfig, OmegaConf

    try:
        cfg = _composed(config_name, overrides)
        node = OmegaConf.select(cfg, parent) if parent else cfg
    except Exception:  # noqa: BLE001 - best effort for a hint
        return []
    return [str(k) for k in node.keys()] if isinstance(node, DictConfig) else []


def _target_arguments(config_name: str, parent: str, overrides: Sequence[str] = ()) -> list[str]:
    """Keyword arguments the node's _target_ accepts (e.g. every Trainer argument), for a hint."""
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    try:
        node = OmegaConf.select(_composed(config_name, overrides), parent)
        target = node.get("_target_") if node is not None else None
        return list(inspect.signature(get_class(target)).parameters) if target else []
    except Exception:  # noqa: BLE001 - best effort for a hint
        return []
