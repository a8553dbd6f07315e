"""Entry point of the async-pf plugin (entry-point group ``vmctl``)."""

from vmctl import hookimpl
from vmctl_async_pf.schema import ASYNC_PF


@hookimpl
def vmctl_sections():
    return [ASYNC_PF]
