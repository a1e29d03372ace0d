"""Repository-supplied text made safe to print on a terminal.

A file name, a message quoting a file, or a value from the answers can hold control characters:
an ANSI escape sequence that recolours, moves the cursor or clears the screen, a carriage return
or a newline that starts a line of its own, a bidirectional override that reorders what follows.
Text output shows each of them as an escape (``\\x1b``, ``\\n``, ``\\u202e``) so that one
finding stays one line and cannot forge or hide another; JSON and SARIF output carry the exact
text. A byte that is not UTF-8 (kept in a file name as a lone surrogate) shows as ``\\xNN``.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, line and paragraph separators, bidirectional marks and overrides,
# lone surrogates
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    if match.group() in _NAMED:
        return _NAMED[match.group()]
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, keep: str = "") -> str:
    """``text`` with every control character escaped, except those in ``keep`` (a diff keeps
    its newlines and tabs)."""
    s = str(text)
    if not keep:
        return _UNSAFE.sub(_escape, s)
    return _UNSAFE.sub(lambda m: m.group() if m.group() in keep else _escape(m), s)
