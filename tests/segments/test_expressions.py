"""The compiled rule language against a plain interpreter of the documented semantics.

Rules are generated from the grammar (comparisons and their chains, and/or/not,
arithmetic, min/max/coalesce/abs, `in`, segment()) over features of every kind, and
evaluated on values that include null and, for `any` features, values of other types.
The interpreter below reads the rule's Python syntax tree directly and shares no code
with segments.expressions."""

from __future__ import annotations

import ast
import operator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segments.expressions import ExpressionError, compile_expression, segment_function

NUMBERS = ["purchases_total", "days_since_last_purchase", "revenue_90d", "cart_items"]
STRINGS = ["device", "country"]
BOOLS = ["consent_marketing"]
ANYS = ["profile.tier", "profile.age"]
SEGMENTS = {"a": True, "b": False}


def reference(text: str, values: dict[str, Any]) -> Any:
    """The documented semantics, read straight off the syntax tree."""
    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return {"true": True, "false": False, "null": None}.get(node.id, values.get(node.id)) \
                if node.id in ("true", "false", "null") else values[node.id]
        if isinstance(node, ast.Attribute):
            return values[f"{node.value.id}.{node.attr}"]  # type: ignore[attr-defined]
        if isinstance(node, ast.BoolOp):
            if isinstance(node.op, ast.And):
                return all(bool(ev(v)) for v in node.values)
            return any(bool(ev(v)) for v in node.values)
        if isinstance(node, ast.UnaryOp):
            v = ev(node.operand)
            if isinstance(node.op, ast.Not):
                return not v
            return None if v is None else -v
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            if a is None or b is None:
                return None
            if isinstance(node.op, (ast.Div, ast.Mod)) and b == 0:
                return None
            return {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
                    ast.Div: operator.truediv, ast.Mod: operator.mod}[type(node.op)](a, b)
        if isinstance(node, ast.Compare):
            operands = [ev(o) for o in [node.left, *node.comparators]]
            return all(compare(op, operands[i], operands[i + 1])
                       for i, op in enumerate(node.ops))
        if isinstance(node, (ast.Tuple, ast.List)):
            return tuple(ev(e) for e in node.elts)
        if isinstance(node, ast.Call):
            name = node.func.id  # type: ignore[attr-defined]
            if name == "segment":
                return SEGMENTS[node.args[0].value]  # type: ignore[attr-defined]
            if name == "coalesce":
                for arg in node.args:
                    v = ev(arg)
                    if v is not None:
                        return v
                return None
            args = [ev(a) for a in node.args]
            if any(a is None for a in args):
                return None
            return {"abs": lambda: abs(args[0]), "min": lambda: min(args),
                    "max": lambda: max(args)}[name]()
        raise AssertionError(ast.dump(node))

    def compare(op: ast.cmpop, a: Any, b: Any) -> bool:
        if isinstance(op, (ast.In, ast.NotIn)):
            if a is None or b is None or (isinstance(b, str) and not isinstance(a, str)):
                return False
            try:
                return (a in b) != isinstance(op, ast.NotIn)
            except TypeError:
                return False
        if isinstance(op, ast.Eq):
            return bool(a == b)
        if isinstance(op, ast.NotEq):
            return bool(a != b)
        if a is None or b is None:
            return False
        fn = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
              ast.GtE: operator.ge}[type(op)]
        try:
            return bool(fn(a, b))
        except TypeError:
            return False

    return ev(ast.parse(text, mode="eval").body)


def numbers() -> st.SearchStrategy[str]:
    leaf = st.one_of(st.sampled_from(NUMBERS), st.integers(-3, 100).map(str),
                     st.sampled_from(["0.5", "null", "profile.age"]))
    return st.recursive(leaf, lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "%"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda e: f"-{e}"), inner.map(lambda e: f"abs({e})"),
        st.lists(inner, min_size=2, max_size=3).flatmap(
            lambda xs: st.sampled_from([f"min({', '.join(xs)})", f"max({', '.join(xs)})",
                                        f"coalesce({', '.join(xs)})"]))), max_leaves=4)


def conditions() -> st.SearchStrategy[str]:
    ordering = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])
    number_test = st.one_of(
        st.tuples(numbers(), ordering, numbers()).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
        st.tuples(numbers(), ordering, numbers(), ordering, numbers()).map(
            lambda t: " ".join(t)))
    string_test = st.one_of(
        st.tuples(st.sampled_from([*STRINGS, "profile.tier"]), st.sampled_from(["==", "!=", "<"]),
                  st.sampled_from(["'GB'", "'mobile'", "null"])).map(" ".join),
        st.tuples(st.sampled_from(STRINGS + ANYS), st.sampled_from(["in", "not in"]),
                  st.sampled_from(["('GB', 'mobile')", "'GBR'", "(1, 2)"])).map(" ".join))
    leaf = st.one_of(number_test, string_test, st.sampled_from(
        ["consent_marketing", "segment('a')", "segment('b')", "true", "profile.tier"]))
    return st.recursive(leaf, lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=3).flatmap(
            lambda xs: st.sampled_from([" and ".join(f"({x})" for x in xs),
                                        " or ".join(f"({x})" for x in xs)])),
        inner.map(lambda e: f"not ({e})")), max_leaves=5)


feature_values = st.fixed_dictionaries({
    **{n: st.one_of(st.none(), st.integers(-5, 200), st.floats(-10, 300, allow_nan=False))
       for n in NUMBERS},
    **{n: st.one_of(st.none(), st.sampled_from(["GB", "mobile", "desktop", ""]))
       for n in STRINGS},
    "consent_marketing": st.one_of(st.none(), st.booleans()),
    "profile.tier": st.one_of(st.none(), st.sampled_from(["gold", "GB"]), st.integers(0, 3)),
    "profile.age": st.one_of(st.none(), st.integers(0, 90), st.sampled_from(["old", ""])),
})


def outcome(fn: Any) -> Any:
    try:
        return ("value", fn())
    except (TypeError, ZeroDivisionError) as exc:
        return ("raises", type(exc))


@settings(max_examples=2000, deadline=None)
@given(text=conditions(), values=feature_values)
def test_compiled_rules_agree_with_the_documented_semantics(text: str,
                                                            values: dict[str, Any]) -> None:
    try:
        rule = compile_expression(text, allow_event=False)
    except ExpressionError:
        return  # a type mismatch the checker refuses; the interpreter would run it
    got = outcome(lambda: rule.evaluate(values, segment=SEGMENTS.__getitem__))
    expected = outcome(lambda: reference(text, values))
    assert got == expected, text
    if got[0] == "value" and rule.kind == "bool":
        # a segment is a member or not: never None or another truthy value
        fixed = [(name, compile_expression(str(member).lower(), allow_event=False), None)
                 for name, member in SEGMENTS.items()]
        combined = segment_function([*fixed, ("x", rule, None)])
        assert outcome(lambda: combined(values.__getitem__, frozenset())) == (
            "value", (True, False, bool(expected[1])))


def test_segments_compile_into_one_function_in_dependency_order() -> None:
    buyer = compile_expression("purchases_total >= 1", allow_event=False)
    big = compile_expression("revenue_90d > 100 and segment('buyer')", allow_event=False)
    quiet = compile_expression("not segment('big')", allow_event=False)
    fn = segment_function([("buyer", buyer, None), ("big", big, None),
                           ("quiet_buyer", quiet, "buyer")])
    values = {"purchases_total": 2, "revenue_90d": 150.0}
    assert fn(values.__getitem__, frozenset()) == (True, True, False)
    values = {"purchases_total": 2, "revenue_90d": 50.0}
    assert fn(values.__getitem__, frozenset()) == (True, False, True)
    # a segment outside `evaluate` keeps its current membership, read from CUR
    only = segment_function([("buyer", buyer, None), ("big", big, None),
                             ("quiet_buyer", quiet, "buyer")], frozenset({"quiet_buyer"}))
    assert only({}.__getitem__, frozenset({"big"})) == (False, True, False)
    assert only({}.__getitem__, frozenset({"buyer"})) == (True, False, True)


@pytest.mark.parametrize("text", ["__import__('os')", "purchases_total.__class__",
                                  "(lambda: 1)()", "[x for x in (1, 2)]", "open('f')",
                                  "purchases_total if true else 1"])
def test_nothing_outside_the_grammar_compiles(text: str) -> None:
    with pytest.raises(ExpressionError):
        compile_expression(text, allow_event=False)
