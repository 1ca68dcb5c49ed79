"""The rule language of the definitions file, compiled from ``ast`` into closures.

Text is parsed with :func:`ast.parse` and checked node by node against the feature
catalog; what is allowed becomes a tree of small Python closures. Nothing is ever
``eval``-ed. Null semantics: a feature that does not apply yet is ``None``; any
comparison involving ``None`` is false, except ``== None``/``!= None``; arithmetic
with ``None`` gives ``None``; ``None`` is false in ``and``/``or``/``not``.

>>> e = compile_expression("purchases_90d >= 3 and revenue_365d >= 500", allow_event=False)
>>> e.evaluate({"purchases_90d": 4, "revenue_365d": 612.5}, segment=lambda n: False)
True
>>> e.evaluate({"purchases_90d": None, "revenue_365d": 612.5}, segment=lambda n: False)
False
>>> sorted(e.features)
['purchases_90d', 'revenue_365d']
>>> compile_expression("days_since_last_purchase > 90", allow_event=False).thresholds
{'days_since_last_purchase': (90.0,)}
>>> try:
...     compile_expression("purchases_total >= 'x'", allow_event=False)
... except ExpressionError as exc:
...     print(exc)
type mismatch: 'purchases_total' is a number, compared with a string (column 1)
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from segments.catalog import FeatureSpec, lookup

__all__ = ["Expression", "ExpressionError", "compile_expression"]

Env = tuple[Mapping[str, Any], Callable[[str], bool], Mapping[str, Any] | None]
Fn = Callable[[Env], Any]


class ExpressionError(ValueError):
    """A rule that cannot be compiled; ``column`` is 1-based."""

    def __init__(self, message: str, column: int | None = None) -> None:
        self.message = message
        self.column = column
        super().__init__(message if column is None else f"{message} (column {column})")


@dataclass(frozen=True)
class Expression:
    """A compiled rule: what it reads, and a fast ``evaluate``."""

    text: str
    features: frozenset[str]
    segments: frozenset[str]
    event_fields: frozenset[str]
    thresholds: Mapping[str, tuple[float, ...]]
    needs_polling: frozenset[str]
    kind: str
    _fn: Fn = field(repr=False, compare=False)

    def evaluate(self, features: Mapping[str, Any], *, segment: Callable[[str], bool],
                 event: Mapping[str, Any] | None = None) -> Any:
        return self._fn((features, segment, event))


_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
}
_ARITH: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Mod: operator.mod,
}
_LITERAL_NAMES = {"true": True, "false": False, "null": None, "True": True,
                  "False": False, "None": None}


class _Compiler:
    def __init__(self, allow_event: bool, known: Callable[[str], FeatureSpec | None]) -> None:
        self.allow_event = allow_event
        self.known = known
        self.features: set[str] = set()
        self.segments: set[str] = set()
        self.event_fields: set[str] = set()
        self.thresholds: dict[str, set[float]] = {}
        self.linear_uses: dict[str, int] = {}

    def fail(self, node: ast.AST, message: str) -> ExpressionError:
        return ExpressionError(message, getattr(node, "col_offset", -1) + 1)

    # Each visit returns (closure, kind) with kind in number|string|bool|any|null.
    def visit(self, node: ast.AST) -> tuple[Fn, str]:
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            raise self.fail(node, f"{type(node).__name__.lower()} is not allowed in a rule")
        result: tuple[Fn, str] = method(node)
        return result

    def visit_Constant(self, node: ast.Constant) -> tuple[Fn, str]:
        value = node.value
        if isinstance(value, bool):
            kind = "bool"
        elif isinstance(value, (int, float)):
            kind = "number"
        elif isinstance(value, str):
            kind = "string"
        elif value is None:
            kind = "null"
        else:
            raise self.fail(node, f"constant {value!r} is not allowed")
        return (lambda env: value), kind

    def _dotted(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            base = self._dotted(node.value)
            return None if base is None else f"{base}.{node.attr}"
        return None

    def visit_Name(self, node: ast.Name) -> tuple[Fn, str]:
        if node.id in _LITERAL_NAMES:
            return self.visit_Constant(ast.Constant(_LITERAL_NAMES[node.id],
                                                    col_offset=node.col_offset))
        return self._feature(node, node.id)

    def visit_Attribute(self, node: ast.Attribute) -> tuple[Fn, str]:
        name = self._dotted(node)
        if name is None:
            raise self.fail(node, "attribute access is only allowed on names")
        if name.startswith("event."):
            return self._event(node, name[6:])
        return self._feature(node, name)

    def _feature(self, node: ast.AST, name: str) -> tuple[Fn, str]:
        if name == "event":
            raise self.fail(node, "'event' needs a field, e.g. event.type")
        spec = self.known(name)
        if spec is None:
            raise self.fail(node, f"unknown feature '{name}'")
        self.features.add(name)
        if spec.time_linear:
            self.linear_uses[name] = self.linear_uses.get(name, 0) + 1
        return (lambda env: env[0][name]), spec.kind

    def _event(self, node: ast.AST, path: str) -> tuple[Fn, str]:
        if not self.allow_event:
            raise self.fail(node, "event fields can only be read by moments")
        parts = path.split(".")
        if parts[0] not in ("type", "ts", "properties", "context") or (
                parts[0] in ("type", "ts") and len(parts) > 1) or (
                parts[0] in ("properties", "context") and len(parts) != 2):
            raise self.fail(node, f"unknown event field 'event.{path}'")
        self.event_fields.add(path)
        if len(parts) == 1:
            key = parts[0]
            return (lambda env: None if env[2] is None else env[2].get(key)), (
                "string" if key == "type" else "number")
        outer, inner = parts

        def read(env: Env) -> Any:
            if env[2] is None:
                return None
            section = env[2].get(outer)
            return section.get(inner) if isinstance(section, Mapping) else None
        return read, "any"

    def visit_BoolOp(self, node: ast.BoolOp) -> tuple[Fn, str]:
        parts = [self.visit(v)[0] for v in node.values]
        if len(parts) == 2:
            first, second = parts
            if isinstance(node.op, ast.And):
                return (lambda env: bool(first(env)) and bool(second(env))), "bool"
            return (lambda env: bool(first(env)) or bool(second(env))), "bool"
        if isinstance(node.op, ast.And):
            return (lambda env: all(bool(p(env)) for p in parts)), "bool"
        return (lambda env: any(bool(p(env)) for p in parts)), "bool"

    def visit_UnaryOp(self, node: ast.UnaryOp) -> tuple[Fn, str]:
        inner, kind = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return (lambda env: not inner(env)), "bool"
        if isinstance(node.op, ast.USub):
            self._numeric(node.operand, kind)
            return (lambda env: None if (v := inner(env)) is None else -v), "number"
        raise self.fail(node, "only 'not' and '-' are allowed as unary operators")

    def visit_BinOp(self, node: ast.BinOp) -> tuple[Fn, str]:
        op = _ARITH.get(type(node.op))
        if op is None:
            raise self.fail(node, "only + - * / % are allowed")
        left, lk = self.visit(node.left)
        right, rk = self.visit(node.right)
        self._numeric(node.left, lk)
        self._numeric(node.right, rk)

        def arith(env: Env) -> Any:
            a, b = left(env), right(env)
            if a is None or b is None or (b == 0 and op in (operator.truediv, operator.mod)):
                return None
            return op(a, b)
        return arith, "number"

    def _numeric(self, node: ast.AST, kind: str) -> None:
        if kind in ("string", "bool"):
            raise self.fail(node, f"arithmetic needs numbers, got a {kind}")

    def visit_Compare(self, node: ast.Compare) -> tuple[Fn, str]:
        operands = [node.left, *node.comparators]
        compiled = [self.visit(o) for o in operands]
        checks: list[Callable[[Any, Any], bool]] = []
        for i, op in enumerate(node.ops):
            (_, lk), (_, rk) = compiled[i], compiled[i + 1]
            if isinstance(op, (ast.In, ast.NotIn)):
                checks.append(self._membership(node, op, lk, operands[i + 1], rk))
                continue
            fn = _COMPARE.get(type(op))
            if fn is None:
                raise self.fail(node, "'is' is not allowed; use == or !=")
            self._comparable(node, operands[i], lk, operands[i + 1], rk)
            self._threshold(operands[i], operands[i + 1])
            checks.append(_null_safe(fn, isinstance(op, (ast.Eq, ast.NotEq))))
        fns = [c[0] for c in compiled]
        if len(checks) == 1:  # the common case, without the generic loop
            left, right, check = fns[0], fns[1], checks[0]
            return (lambda env: check(left(env), right(env))), "bool"

        def compare(env: Env) -> bool:
            values = [f(env) for f in fns]
            return all(check(values[i], values[i + 1]) for i, check in enumerate(checks))
        return compare, "bool"

    def _comparable(self, node: ast.AST, left: ast.AST, lk: str, right: ast.AST,
                    rk: str) -> None:
        if "any" in (lk, rk) or "null" in (lk, rk) or lk == rk:
            return
        name = self._dotted(left) or self._dotted(right) or "value"
        kind = lk if self._dotted(left) else rk
        other = rk if self._dotted(left) else lk
        raise self.fail(node, f"type mismatch: '{name}' is a {kind}, compared with a "
                        f"{'number' if other == 'number' else other}")

    def _membership(self, node: ast.AST, op: ast.cmpop, lk: str, right: ast.AST,
                    rk: str) -> Callable[[Any, Any], bool]:
        negate = isinstance(op, ast.NotIn)
        if isinstance(right, (ast.Tuple, ast.List)):
            for element in right.elts:
                ek = self.visit(element)[1]
                if lk not in ("any", "null") and ek not in ("any", lk):
                    raise self.fail(element, f"type mismatch: a {lk} tested against a "
                                    f"list holding a {ek}")
        elif rk not in ("string", "any"):
            raise self.fail(right, "'in' needs a list, a tuple or a string on its right")

        def member(a: Any, b: Any) -> bool:
            if a is None or b is None:
                return False
            if isinstance(b, str) and not isinstance(a, str):
                return False
            try:
                return (a not in b) if negate else (a in b)
            except TypeError:
                return False
        return member

    def _threshold(self, left: ast.AST, right: ast.AST) -> None:
        for feature, constant in ((left, right), (right, left)):
            name = self._dotted(feature)
            spec = self.known(name) if name else None
            if spec is not None and spec.time_linear and isinstance(constant, ast.Constant) \
                    and isinstance(constant.value, (int, float)) \
                    and not isinstance(constant.value, bool):
                self.thresholds.setdefault(name, set()).add(float(constant.value))  # type: ignore[arg-type]
                self.linear_uses[name] -= 1  # type: ignore[index]

    def visit_Tuple(self, node: ast.Tuple) -> tuple[Fn, str]:
        items = [self.visit(e)[0] for e in node.elts]
        return (lambda env: tuple(i(env) for i in items)), "list"

    visit_List = visit_Tuple

    def visit_Call(self, node: ast.Call) -> tuple[Fn, str]:
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise self.fail(node, "only segment(), abs(), min(), max() and coalesce() "
                            "can be called")
        name = node.func.id
        if name == "segment":
            arg = node.args[0] if len(node.args) == 1 else None
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                raise self.fail(node, "segment() takes one segment name in quotes")
            target = arg.value
            self.segments.add(target)
            return (lambda env: bool(env[1](target))), "bool"
        args = [self.visit(a) for a in node.args]
        fns = [a[0] for a in args]
        if name == "abs" and len(args) == 1:
            self._numeric(node, args[0][1])
            f = fns[0]
            return (lambda env: None if (v := f(env)) is None else abs(v)), "number"
        if name in ("min", "max") and len(args) >= 2:
            for a, (_, kind) in zip(node.args, args, strict=True):
                self._numeric(a, kind)
            pick = min if name == "min" else max

            def extreme(env: Env) -> Any:
                vals = [f(env) for f in fns]
                return None if any(v is None for v in vals) else pick(vals)
            return extreme, "number"
        if name == "coalesce" and args:
            def first(env: Env) -> Any:
                for f in fns:
                    if (v := f(env)) is not None:
                        return v
                return None
            kinds = {k for _, k in args} - {"null"}
            return first, kinds.pop() if len(kinds) == 1 else "any"
        raise self.fail(node, f"unknown function '{name}' or wrong number of arguments")


def _null_safe(fn: Callable[[Any, Any], bool], equality: bool) -> Callable[[Any, Any], bool]:
    def check(a: Any, b: Any) -> bool:
        if a is None or b is None:
            return equality and fn(a, b)
        try:
            return fn(a, b)
        except TypeError:
            return False
    return check


def compile_expression(text: str, *, allow_event: bool,
                       known: Callable[[str], FeatureSpec | None] = lookup) -> Expression:
    """Parse, check and compile one rule. Raises :class:`ExpressionError`."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error: {exc.msg}", exc.offset) from None
    compiler = _Compiler(allow_event, known)
    fn, kind = compiler.visit(tree.body)
    return Expression(
        text=text,
        features=frozenset(compiler.features),
        segments=frozenset(compiler.segments),
        event_fields=frozenset(compiler.event_fields),
        thresholds={k: tuple(sorted(v)) for k, v in sorted(compiler.thresholds.items())},
        needs_polling=frozenset(k for k, n in compiler.linear_uses.items() if n > 0),
        kind=kind,
        _fn=fn,
    )
