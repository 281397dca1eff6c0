"""Fault injection for the crash tests: die on the spot at a named point.

With ``CODECSHIFT_FAULT_POINT=<point>`` in its environment, a process that
reaches that point calls ``os._exit`` at once: no cleanup, no finally blocks,
no flushed buffers, as if the machine lost power there. The points are
``before:<step>`` and ``after:<step>`` for every replace step and
``journal:<step>`` halfway through writing a journal. Unset, this costs one
dictionary lookup.
"""

from __future__ import annotations

import os

ENV = "CODECSHIFT_FAULT_POINT"
EXIT_CODE = 86


def fault_point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os._exit(EXIT_CODE)
