"""Spec strings of the learning layer's registries: ``"name"`` or ``"name(key=value, ...)"``."""

from __future__ import annotations

import ast
import re

from deai.learn.errors import UnknownName

__all__ = ["parse_call", "split_plus"]

_CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$", re.S)


def parse_call(text: str) -> tuple[str, dict]:
    """``"name"`` or ``"name(k=v, ...)"`` (keyword arguments, Python literals only) -> (name, kwargs)."""
    m = _CALL.match(text)
    if not m:
        raise UnknownName(f"cannot parse {text!r}; expected name or name(key=value, ...)")
    name, args = m.group(1).lower(), m.group(2)
    kwargs: dict = {}
    if args and args.strip():
        try:
            call = ast.parse(f"f({args})", mode="eval").body
            if not isinstance(call, ast.Call) or call.args:
                raise ValueError("only keyword arguments are allowed")
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
        except (SyntaxError, ValueError) as exc:
            raise UnknownName(f"bad arguments {args!r} for {name!r}: {exc}") from exc
    return name, kwargs


def split_plus(spec: str) -> list[str]:
    """Split a chain ``"a(x=1)+b"`` on ``+`` outside parentheses (arguments may hold ``1e+3``)."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in spec:
        depth += (ch == "(") - (ch == ")")
        if ch == "+" and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts
