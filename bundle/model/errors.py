"""Our own exceptions. The library raises these; only the CLI turns them into messages and exits.

Each message is one line that names the file or flag at fault and what is wrong with it.
"""


class NbError(Exception):
    """Base of every error nb-evidence raises on purpose."""

    exit_code = 2


class UserError(NbError):
    """Bad input: a spec, a flag, a file, a log. Exit 2, nothing written."""


class SpecError(UserError):
    """A capture spec (TOML) is unreadable, incomplete or inconsistent."""


class TargetError(UserError):
    """A target profile is unreadable or would break the identical-arguments rule."""


class TraceError(UserError):
    """A log holds no trace lines, or cannot be read."""


class ImageError(UserError):
    """A float image is missing or has the wrong size for the declared detector."""


class BundleError(UserError):
    """A bundle directory or manifest is missing, unreadable or invalid."""


class ContainerError(NbError):
    """The container engine is absent, refused, or a build failed."""


class Interrupted(BaseException):
    """A signal (SIGINT, SIGTERM, SIGHUP) stopped the work. A BaseException, like
    KeyboardInterrupt, so no ``except Exception`` on the way up swallows it, while every
    ``finally`` still runs: that is where engines, containers, scratch and staging are cleaned up.
    """

    def __init__(self, signum: int):
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum
        self.exit_code = 128 + signum
