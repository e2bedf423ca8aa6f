"""Who holds a claim: "host:pid:start" of the dispatching process (the host with its PID
namespace), and whether that process is still alive (only answerable on the same host).

A worker killed with SIGKILL leaves its rows in `sending`; a worker on the same host sees
at once that the process is gone (no such pid, or the pid now belongs to a process that
started at another time) and takes the rows over without waiting out the lease. Claims
held on other hosts are judged by their lease, which a live holder keeps renewing.
"""

from __future__ import annotations

import os
import socket
from functools import cache


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from the state field on (Linux), or None if unreadable."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields if len(fields) > 19 else None


def _start_time(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot), or None if unknown."""
    fields = _stat(pid)
    return fields[19] if fields else None


def me() -> str:
    """This process as a claim holder."""
    return _holder(os.getpid())


@cache
def _holder(pid: int) -> str:
    return f"{_host()}:{pid}:{_start_time(pid) or '-'}"


def _host() -> str:
    """This host's name, with its PID namespace where there is one: two containers that
    share a hostname do not see each other's processes, so must not judge them."""
    try:
        namespace = os.readlink("/proc/self/ns/pid").strip("pid:[]")
    except OSError:
        return socket.gethostname()
    return f"{socket.gethostname()}/{namespace}"


def is_dead(holder: str) -> bool:
    """Whether `holder` is a process of this host that no longer runs. False when it is
    alive or cannot be judged from here (another host, an unreadable name)."""
    parts = holder.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    host, pid_text, start = parts
    if host != _host():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return holder != me()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's
    fields = _stat(pid)
    if fields is None:
        return False
    # A zombie (killed, not yet reaped) is dead; a pid reused by a later process too.
    return fields[0] in ("Z", "X") or (start != "-" and fields[19] != start)


__all__ = ["is_dead", "me"]
