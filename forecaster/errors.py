"""The one error kind a person fixes by changing what they asked for, and the checks of config
values that raise it.

Imports nothing at module level, so the entry points can name it before the heavy stack
(lightning, mlflow) is loaded.
"""


class UsageError(Exception):
    """Bad input from the person running a job: a config value, the data, a run in use.

    Entry points print its message alone on stderr and exit with status 2 (the traceback only
    with ``HYDRA_FULL_ERROR=1``): the message already says what to change.
    """


class ConfigError(UsageError, ValueError):
    """A config value breaks a rule; raised when the object it configures is built, before any
    data is read or any training starts. The message names the key, the value and the rule."""


def check(key: str, value, ok: bool, needed: str) -> None:
    """Raise ``ConfigError("<key>=<value> is invalid: it must be <needed>")`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{key}={value!r} is invalid: it must be {needed}")


def positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def build(node, **kwargs):
    """``hydra.utils.instantiate(node, **kwargs)``; a rule the object checks (``ConfigError``)
    is raised as itself, not wrapped in Hydra's ``InstantiationException``."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, ConfigError):
            raise err.__cause__ from None
        raise
