"""The rule language of the definitions file, checked on ``ast`` and compiled to Python.

Text is parsed with :func:`ast.parse` and checked node by node against the feature
catalog. What is allowed is rebuilt as a *new* syntax tree made only of a few node
kinds (comparisons, boolean logic, arithmetic, calls of the helpers below, feature
reads through ``F``) and compiled with :func:`compile`: the user's text is never
executed, only the tree the checker built from it. Evaluating a rule is then one
Python function call, not a walk over a tree of closures; :mod:`segments.engine`
goes further and compiles all the segments of a file into one function
(:func:`segment_function`).

Null semantics: a feature that does not apply yet is ``None``; any comparison
involving ``None`` is false, except ``== None``/``!= None``; arithmetic with ``None``
gives ``None`` (so does division by zero); ``None`` is false in ``and``/``or``/``not``.

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from segments.catalog import FeatureSpec, lookup

__all__ = ["Expression", "ExpressionError", "compile_expression", "segment_function"]

# The names a compiled rule may use: F(name) reads a feature, SEG(name) a segment's
# membership, EV the event (a mapping, or None outside moments); the rest are helpers.
Node = ast.expr


class ExpressionError(ValueError):
    """A rule that cannot be compiled; ``column`` is 1-based."""

    def __init__(self, message: str, column: int | None = None) -> None:
        self.message = message
        self.column = column
        super().__init__(message if column is None else f"{message} (column {column})")


@dataclass(frozen=True)
class Expression:
    """A compiled rule: what it reads, its syntax tree and a fast ``evaluate``."""

    text: str
    features: frozenset[str]
    segments: frozenset[str]
    event_fields: frozenset[str]
    thresholds: Mapping[str, tuple[float, ...]]
    needs_polling: frozenset[str]
    kind: str
    tree: Node = field(repr=False, compare=False)
    _fn: Callable[..., Any] = field(repr=False, compare=False)
    _by_event_type: dict[str, Callable[..., Any] | None] = field(
        default_factory=dict, repr=False, compare=False)

    def evaluate(self, features: Mapping[str, Any], *, segment: Callable[[str], bool],
                 event: Mapping[str, Any] | None = None) -> Any:
        return self._fn(features.__getitem__, segment, event)

    def for_event_type(self, event_type: str) -> Callable[..., Any] | None:
        """This rule with ``event.type`` known: ``fn(F, SEG, EV)``, or None when it can
        never hold for events of that type. Comparisons of ``event.type`` with constants
        are decided here, once, instead of at every event; what they leave is the same
        rule (only constant parts that would be evaluated first are folded away, so
        nothing that could raise is skipped)."""
        cache = self._by_event_type
        if event_type not in cache:
            tree = _fold(_EventType(event_type).visit(_copy(self.tree)))
            if isinstance(tree, ast.Constant) and not tree.value:
                cache[event_type] = None
            else:
                cache[event_type] = _function("rule", ("F", "SEG", "EV"), [ast.Return(tree)])
        return cache[event_type]


# ------------------------------------------------------------------ runtime helpers

def _null_safe(fn: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def check(a: Any, b: Any) -> bool:
        if a is None or b is None:
            return False
        try:
            return fn(a, b)
        except TypeError:
            return False
    return check


def _member(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    if isinstance(b, str) and not isinstance(a, str):
        return False
    try:
        return a in b
    except TypeError:
        return False


def _not_member(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    if isinstance(b, str) and not isinstance(a, str):
        return False
    try:
        return a not in b
    except TypeError:
        return False


def _arith(op: Callable[[Any, Any], Any], by_zero: bool) -> Callable[[Any, Any], Any]:
    def arith(a: Any, b: Any) -> Any:
        if a is None or b is None or (by_zero and b == 0):
            return None
        return op(a, b)
    return arith


def _extreme(pick: Callable[..., Any]) -> Callable[..., Any]:
    def extreme(*values: Any) -> Any:
        return None if any(v is None for v in values) else pick(values)
    return extreme


def _event_field(event: Mapping[str, Any] | None, key: str) -> Any:
    return None if event is None else event.get(key)


def _event_section(event: Mapping[str, Any] | None, outer: str, inner: str) -> Any:
    if event is None:
        return None
    section = event.get(outer)
    return section.get(inner) if isinstance(section, Mapping) else None


_HELPERS: dict[str, Any] = {
    "_lt": _null_safe(operator.lt), "_le": _null_safe(operator.le),
    "_gt": _null_safe(operator.gt), "_ge": _null_safe(operator.ge),
    "_in": _member, "_not_in": _not_member,
    "_add": _arith(operator.add, False), "_sub": _arith(operator.sub, False),
    "_mul": _arith(operator.mul, False), "_div": _arith(operator.truediv, True),
    "_mod": _arith(operator.mod, True),
    "_min": _extreme(min), "_max": _extreme(max),
    "_event_field": _event_field, "_event_section": _event_section,
}
_ORDERING = {ast.Lt: "_lt", ast.LtE: "_le", ast.Gt: "_gt", ast.GtE: "_ge"}
_ORDERING_OPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.Lt, ast.LtE: ast.LtE, ast.Gt: ast.Gt, ast.GtE: ast.GtE}
_ARITH_HELPERS = {ast.Add: "_add", ast.Sub: "_sub", ast.Mult: "_mul", ast.Div: "_div",
                  ast.Mod: "_mod"}
_LITERAL_NAMES = {"true": True, "false": False, "null": None, "True": True,
                  "False": False, "None": None}
_BOOLEAN_HELPERS = frozenset({"bool", "_lt", "_le", "_gt", "_ge", "_in", "_not_in"})


def _name(identifier: str) -> ast.Name:
    return ast.Name(identifier, ast.Load())


def _call(function: str, *args: Node) -> ast.Call:
    return ast.Call(_name(function), list(args), [])


def _constant(value: Any) -> ast.Constant:
    return ast.Constant(value)


def _is_boolean(node: Node) -> bool:
    """Whether the node always yields True or False (a feature of kind bool may be
    None, so kinds do not tell)."""
    if isinstance(node, ast.Compare):
        return True
    if isinstance(node, ast.BoolOp):
        return all(_is_boolean(v) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        return isinstance(node.op, ast.Not)
    if isinstance(node, ast.Constant):
        return isinstance(node.value, bool)
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
        and node.func.id in _BOOLEAN_HELPERS


def _is_plain(node: Node) -> bool:
    """A constant or a feature read: evaluating it never raises."""
    return isinstance(node, ast.Constant) or (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "F")


def _truth(node: Node) -> Node:
    """``bool(node)``, skipped where the node is a boolean already."""
    return node if _is_boolean(node) else _call("bool", node)


def _helper_check(helper: str) -> Callable[[Node, Node], Node]:
    def check(a: Node, b: Node) -> Node:
        return _call(helper, a, b)
    return check


def _plain_check(op: type[ast.cmpop]) -> Callable[[Node, Node], Node]:
    def check(a: Node, b: Node) -> Node:
        return ast.Compare(a, [op()], [b])
    return check


# ------------------------------------------------------------------ the checker

class _Compiler:
    def __init__(self, allow_event: bool, known: Callable[[str], FeatureSpec | None]) -> None:
        self.allow_event = allow_event
        self.known = known
        self.features: set[str] = set()
        self.segments: set[str] = set()
        self.event_fields: set[str] = set()
        self.thresholds: dict[str, set[float]] = {}
        self.linear_uses: dict[str, int] = {}
        self.temps = 0

    def temp(self) -> str:
        self.temps += 1
        return f"_t{self.temps}"

    def fail(self, node: ast.AST, message: str) -> ExpressionError:
        return ExpressionError(message, getattr(node, "col_offset", -1) + 1)

    # Each visit returns (node, kind) with kind in number|string|bool|any|null|list.
    def visit(self, node: ast.AST) -> tuple[Node, str]:
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            raise self.fail(node, f"{type(node).__name__.lower()} is not allowed in a rule")
        result: tuple[Node, str] = method(node)
        return result

    def visit_Constant(self, node: ast.Constant) -> tuple[Node, str]:
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
        return _constant(value), kind

    def _dotted(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            base = self._dotted(node.value)
            return None if base is None else f"{base}.{node.attr}"
        return None

    def visit_Name(self, node: ast.Name) -> tuple[Node, str]:
        if node.id in _LITERAL_NAMES:
            return self.visit_Constant(ast.Constant(_LITERAL_NAMES[node.id],
                                                    col_offset=node.col_offset))
        return self._feature(node, node.id)

    def visit_Attribute(self, node: ast.Attribute) -> tuple[Node, str]:
        name = self._dotted(node)
        if name is None:
            raise self.fail(node, "attribute access is only allowed on names")
        if name.startswith("event."):
            return self._event(node, name[6:])
        return self._feature(node, name)

    def _feature(self, node: ast.AST, name: str) -> tuple[Node, str]:
        if name == "event":
            raise self.fail(node, "'event' needs a field, e.g. event.type")
        spec = self.known(name)
        if spec is None:
            raise self.fail(node, f"unknown feature '{name}'")
        self.features.add(name)
        if spec.time_linear:
            self.linear_uses[name] = self.linear_uses.get(name, 0) + 1
        return _call("F", _constant(name)), spec.kind

    def _event(self, node: ast.AST, path: str) -> tuple[Node, str]:
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
            return _call("_event_field", _name("EV"), _constant(key)), (
                "string" if key == "type" else "number")
        outer, inner = parts
        return _call("_event_section", _name("EV"), _constant(outer), _constant(inner)), "any"

    def visit_BoolOp(self, node: ast.BoolOp) -> tuple[Node, str]:
        parts = [_truth(self.visit(v)[0]) for v in node.values]
        return ast.BoolOp(ast.And() if isinstance(node.op, ast.And) else ast.Or(),
                          parts), "bool"

    def visit_UnaryOp(self, node: ast.UnaryOp) -> tuple[Node, str]:
        inner, kind = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return ast.UnaryOp(ast.Not(), inner), "bool"
        if isinstance(node.op, ast.USub):
            self._numeric(node.operand, kind)
            t = self.temp()
            # None if (t := inner) is None else -t
            return ast.IfExp(
                ast.Compare(ast.NamedExpr(ast.Name(t, ast.Store()), inner), [ast.Is()],
                            [_constant(None)]),
                _constant(None), ast.UnaryOp(ast.USub(), _name(t))), "number"
        raise self.fail(node, "only 'not' and '-' are allowed as unary operators")

    def visit_BinOp(self, node: ast.BinOp) -> tuple[Node, str]:
        helper = _ARITH_HELPERS.get(type(node.op))
        if helper is None:
            raise self.fail(node, "only + - * / % are allowed")
        left, lk = self.visit(node.left)
        right, rk = self.visit(node.right)
        self._numeric(node.left, lk)
        self._numeric(node.right, rk)
        return _call(helper, left, right), "number"

    def _numeric(self, node: ast.AST, kind: str) -> None:
        if kind in ("string", "bool"):
            raise self.fail(node, f"arithmetic needs numbers, got a {kind}")

    def visit_Compare(self, node: ast.Compare) -> tuple[Node, str]:
        operands = [node.left, *node.comparators]
        compiled = [self.visit(o) for o in operands]
        checks: list[Callable[[Node, Node], Node]] = []
        for i, op in enumerate(node.ops):
            (_, lk), (_, rk) = compiled[i], compiled[i + 1]
            if isinstance(op, (ast.In, ast.NotIn)):
                self._membership(node, lk, operands[i + 1], rk)
                checks.append(_helper_check("_in" if isinstance(op, ast.In) else "_not_in"))
                continue
            if isinstance(op, (ast.Eq, ast.NotEq)):
                self._comparable(node, operands[i], lk, operands[i + 1], rk)
                # == and != hold their meaning with None and never raise
                checks.append(_plain_check(type(op)))
                continue
            if type(op) not in _ORDERING:
                raise self.fail(node, "'is' is not allowed; use == or !=")
            self._comparable(node, operands[i], lk, operands[i + 1], rk)
            self._threshold(operands[i], operands[i + 1])
            checks.append(self._ordering(type(op), lk, rk))
        nodes = [c[0] for c in compiled]
        if len(checks) == 1:
            return checks[0](nodes[0], nodes[1]), "bool"
        # a < b < c: every operand evaluated once, first, then the checks in order
        temps = [self.temp() for _ in nodes]
        values = ast.Tuple([ast.NamedExpr(ast.Name(t, ast.Store()), n)
                            for t, n in zip(temps, nodes, strict=True)], ast.Load())
        steps: list[Node] = [values]  # a non-empty tuple: true
        for i, check in enumerate(checks):
            steps.append(check(_name(temps[i]), _name(temps[i + 1])))
        return ast.BoolOp(ast.And(), steps), "bool"

    def _ordering(self, op: type[ast.cmpop], lk: str,
                  rk: str) -> Callable[[Node, Node], Node]:
        helper = _helper_check(_ORDERING[op])
        if not ({lk, rk} <= {"number", "null"} or {lk, rk} <= {"string", "null"}):
            return helper  # a value of any type: the comparison may raise

        def inline(a: Node, b: Node) -> Node:
            # (t := a) is not None and t OP b, for features and constants of one kind:
            # they never raise, so evaluating the right one only when the left one is
            # not None changes nothing (an operand that computes may raise: helper)
            if not (_is_plain(a) and _is_plain(b)):
                return helper(a, b)
            parts: list[Node] = []
            if not isinstance(a, ast.Constant):
                t = self.temp()
                parts.append(ast.Compare(ast.NamedExpr(ast.Name(t, ast.Store()), a),
                                         [ast.IsNot()], [_constant(None)]))
                a = _name(t)
            elif a.value is None:
                return _constant(False)
            if not isinstance(b, ast.Constant):
                t = self.temp()
                parts.append(ast.Compare(ast.NamedExpr(ast.Name(t, ast.Store()), b),
                                         [ast.IsNot()], [_constant(None)]))
                b = _name(t)
            elif b.value is None:
                return _constant(False)
            parts.append(ast.Compare(a, [_ORDERING_OPS[op]()], [b]))
            return parts[0] if len(parts) == 1 else ast.BoolOp(ast.And(), parts)
        return inline

    def _comparable(self, node: ast.AST, left: ast.AST, lk: str, right: ast.AST,
                    rk: str) -> None:
        if "any" in (lk, rk) or "null" in (lk, rk) or lk == rk:
            return
        name = self._dotted(left) or self._dotted(right) or "value"
        kind = lk if self._dotted(left) else rk
        other = rk if self._dotted(left) else lk
        raise self.fail(node, f"type mismatch: '{name}' is a {kind}, compared with a "
                        f"{'number' if other == 'number' else other}")

    def _membership(self, node: ast.AST, lk: str, right: ast.AST, rk: str) -> None:
        if isinstance(right, (ast.Tuple, ast.List)):
            for element in right.elts:
                ek = self.visit(element)[1]
                if lk not in ("any", "null") and ek not in ("any", lk):
                    raise self.fail(element, f"type mismatch: a {lk} tested against a "
                                    f"list holding a {ek}")
        elif rk not in ("string", "any"):
            raise self.fail(right, "'in' needs a list, a tuple or a string on its right")

    def _threshold(self, left: ast.AST, right: ast.AST) -> None:
        for feature, constant in ((left, right), (right, left)):
            name = self._dotted(feature)
            spec = self.known(name) if name else None
            if spec is not None and spec.time_linear and isinstance(constant, ast.Constant) \
                    and isinstance(constant.value, (int, float)) \
                    and not isinstance(constant.value, bool):
                self.thresholds.setdefault(name, set()).add(float(constant.value))  # type: ignore[arg-type]
                self.linear_uses[name] -= 1  # type: ignore[index]

    def visit_Tuple(self, node: ast.Tuple) -> tuple[Node, str]:
        return ast.Tuple([self.visit(e)[0] for e in node.elts], ast.Load()), "list"

    visit_List = visit_Tuple

    def visit_Call(self, node: ast.Call) -> tuple[Node, str]:
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise self.fail(node, "only segment(), abs(), min(), max() and coalesce() "
                            "can be called")
        name = node.func.id
        if name == "segment":
            arg = node.args[0] if len(node.args) == 1 else None
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                raise self.fail(node, "segment() takes one segment name in quotes")
            self.segments.add(arg.value)
            return _call("bool", _call("SEG", _constant(arg.value))), "bool"
        args = [self.visit(a) for a in node.args]
        nodes = [a[0] for a in args]
        if name == "abs" and len(args) == 1:
            self._numeric(node, args[0][1])
            t = self.temp()
            return ast.IfExp(
                ast.Compare(ast.NamedExpr(ast.Name(t, ast.Store()), nodes[0]), [ast.Is()],
                            [_constant(None)]),
                _constant(None), _call("abs", _name(t))), "number"
        if name in ("min", "max") and len(args) >= 2:
            for a, (_, kind) in zip(node.args, args, strict=True):
                self._numeric(a, kind)
            return _call(f"_{name}", *nodes), "number"
        if name == "coalesce" and args:
            kinds = {k for _, k in args} - {"null"}
            # the first that is not None; later ones are not evaluated
            value: Node = nodes[-1]
            for arg in reversed(nodes[:-1]):
                t = self.temp()
                value = ast.IfExp(
                    ast.Compare(ast.NamedExpr(ast.Name(t, ast.Store()), arg), [ast.IsNot()],
                                [_constant(None)]), _name(t), value)
            return value, kinds.pop() if len(kinds) == 1 else "any"
        raise self.fail(node, f"unknown function '{name}' or wrong number of arguments")


def _locate(tree: ast.AST) -> None:
    """Line 1 for every node without a location. (``ast.fix_missing_locations`` recurses
    through a closure that refers to itself: a reference cycle per compiled function,
    garbage for the cyclic collector when a subset is compiled mid-stream.)"""
    for node in ast.walk(tree):
        if "lineno" in node._attributes:
            for attribute, value in (("lineno", 1), ("col_offset", 0),
                                     ("end_lineno", 1), ("end_col_offset", 0)):
                if getattr(node, attribute, None) is None:
                    setattr(node, attribute, value)


def _function(name: str, params: Sequence[str], body: list[ast.stmt]) -> Callable[..., Any]:
    """Compile a function of the checked nodes; only the helpers are in its globals."""
    arguments = ast.arguments(posonlyargs=[], args=[ast.arg(p) for p in params],
                              kwonlyargs=[], kw_defaults=[], defaults=[])
    module = ast.Module([ast.FunctionDef(name, arguments, body, [], None, None)], [])
    _locate(module)
    scope: dict[str, Any] = {"__builtins__": {"bool": bool, "abs": abs}, **_HELPERS}
    exec(compile(module, f"<rule {name}>", "exec"), scope)  # a checked tree, not text
    # taken out of its globals: left in, function and scope would be a reference cycle
    # (garbage for the cyclic collector when an engine compiles a subset mid-stream)
    function: Callable[..., Any] = scope.pop(name)
    return function


def compile_expression(text: str, *, allow_event: bool,
                       known: Callable[[str], FeatureSpec | None] = lookup) -> Expression:
    """Parse, check and compile one rule. Raises :class:`ExpressionError`."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error: {exc.msg}", exc.offset) from None
    compiler = _Compiler(allow_event, known)
    node, kind = compiler.visit(tree.body)
    fn = _function("rule", ("F", "SEG", "EV"), [ast.Return(node)])
    return Expression(
        text=text,
        features=frozenset(compiler.features),
        segments=frozenset(compiler.segments),
        event_fields=frozenset(compiler.event_fields),
        thresholds={k: tuple(sorted(v)) for k, v in sorted(compiler.thresholds.items())},
        needs_polling=frozenset(k for k, n in compiler.linear_uses.items() if n > 0),
        kind=kind,
        tree=node,
        _fn=fn,
    )


class _Segments(ast.NodeTransformer):
    """``SEG('x')`` becomes the local holding segment x's membership."""

    def __init__(self, locals_: Mapping[str, str]) -> None:
        self.locals = locals_

    def visit_Call(self, node: ast.Call) -> Any:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "SEG":
            arg = node.args[0]
            assert isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            return _name(self.locals[arg.value])
        return node


def segment_function(rules: Sequence[tuple[str, Expression, str | None]],
                     evaluate: frozenset[str] | None = None) -> Callable[..., tuple[bool, ...]]:
    """One function for a whole file's segments: ``fn(F, CUR) -> memberships``.

    ``rules`` are (name, when, parent) in dependency order (a segment after those it
    names and its parent). ``F(feature)`` reads a feature; a segment outside
    ``evaluate`` (None: all) keeps its current membership, ``name in CUR``. A segment
    is a member when its parent is and its rule holds; the result is a tuple of
    booleans in the order of ``rules``.
    """
    locals_ = {name: f"s{i}" for i, (name, _, _) in enumerate(rules)}
    body: list[ast.stmt] = []
    for name, when, parent in rules:
        if evaluate is not None and name not in evaluate:
            value: Node = ast.Compare(_constant(name), [ast.In()], [_name("CUR")])
        else:
            condition = _truth(_Segments(locals_).visit(_copy(when.tree)))
            value = condition if parent is None else ast.BoolOp(
                ast.And(), [_name(locals_[parent]), condition])
        body.append(ast.Assign([ast.Name(locals_[name], ast.Store())], value))
    body.append(ast.Return(ast.Tuple([_name(locals_[n]) for n, _, _ in rules], ast.Load())))
    return _function("segments", ("F", "CUR"), body)


class _EventType(ast.NodeTransformer):
    """``event.type`` becomes the constant it is for one event type."""

    def __init__(self, event_type: str) -> None:
        self.event_type = event_type

    def visit_Call(self, node: ast.Call) -> Any:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "_event_field" \
                and isinstance(node.args[1], ast.Constant) and node.args[1].value == "type":
            return _constant(self.event_type)
        return node


def _fold(node: Node) -> Node:
    """Decide comparisons between constants, and and/or whose leading parts are
    decided. Parts that come after an undecided one stay, in order: folding never
    skips an evaluation the rule would have made."""
    if isinstance(node, ast.Compare) and len(node.ops) == 1 \
            and isinstance(node.left, ast.Constant):
        right = node.comparators[0]
        if isinstance(right, ast.Constant) and isinstance(node.ops[0], (ast.Eq, ast.NotEq)):
            equal = node.left.value == right.value
            return _constant(equal if isinstance(node.ops[0], ast.Eq) else not equal)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id in ("_in", "_not_in") and all(
                _is_constant(a) for a in node.args):
        values = [_value(a) for a in node.args]
        return _constant(bool(_HELPERS[node.func.id](*values)))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = _fold(node.operand)
        if isinstance(inner, ast.Constant):
            return _constant(not inner.value)
        return ast.UnaryOp(ast.Not(), inner)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id == "bool" and len(node.args) == 1:
        inner = _fold(node.args[0])
        return _constant(bool(inner.value)) if isinstance(inner, ast.Constant) else \
            _call("bool", inner)
    if isinstance(node, ast.BoolOp):
        stop = isinstance(node.op, ast.Or)  # the value that decides: True for or
        parts: list[Node] = []
        for value in node.values:
            folded = _fold(value)
            if not parts and isinstance(folded, ast.Constant):
                if bool(folded.value) == stop:
                    return _constant(stop)
                continue  # a leading part that does not decide: drop it
            parts.append(folded)
        if not parts:
            return _constant(not stop)
        if len(parts) == 1:
            return _truth(parts[0])
        return ast.BoolOp(node.op, [_truth(p) for p in parts])
    return node


def _is_constant(node: Node) -> bool:
    return isinstance(node, ast.Constant) or (
        isinstance(node, ast.Tuple) and all(_is_constant(e) for e in node.elts))


def _value(node: Node) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    assert isinstance(node, ast.Tuple)
    return tuple(_value(e) for e in node.elts)


def _copy(node: Node) -> Node:
    copied: Node = ast.parse(ast.unparse(node), mode="eval").body
    return copied
