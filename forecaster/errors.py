"""The one error kind a person fixes by changing what they asked for.

Imports nothing, so the entry points can name it before the heavy stack (lightning, mlflow) is
loaded.
"""


class UsageError(Exception):
    """Bad input from the person running a job: a config value, the data, a run in use.

    Entry points print its message alone on stderr and exit with status 2 (the traceback only
    with ``HYDRA_FULL_ERROR=1``): the message already says what to change.
    """
