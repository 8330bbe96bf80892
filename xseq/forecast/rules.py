"""Recipe rules: a recipe value may be an arithmetic expression in the data's horizon `H` and season `m`
(e.g. `lookback: 8*H`, `patch_len: max(H, m)`), so that one recipe carries over to a new frequency.
Only numbers, H, m, + - * / // and max/min/round are allowed; the result must be a number."""
from __future__ import annotations

import ast
import operator

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv}
_FUNCTIONS = {"max": max, "min": min, "round": round}


def evaluate_rule(expr, **names):
    """The value of `expr` (a number, or a string expression in the given names). Raises ValueError naming
    the expression for anything else."""
    if isinstance(expr, bool) or not isinstance(expr, (int, float, str)):
        raise ValueError(f"a rule must be a number or an expression in {sorted(names)}; got {expr!r}")
    if not isinstance(expr, str):
        return expr
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as e:
        raise ValueError(f"rule {expr!r} is not an expression: {e.msg}") from None

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise ValueError(f"rule {expr!r}: unknown name {node.id!r} (known: {sorted(names)})")
            return names[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
                and not node.keywords):
            return _FUNCTIONS[node.func.id](*[ev(a) for a in node.args])
        raise ValueError(f"rule {expr!r}: only numbers, {sorted(names)}, + - * / // and max/min/round are allowed")

    value = ev(tree)
    return int(value) if isinstance(value, float) and value.is_integer() else value


NUMERIC = ("horizon", "lookback", "season", "patch_len", "min_context", "val_size", "max_train_windows", "d_model",
           "batch_size", "max_epochs", "cross_series", "patience", "quantile_epochs", "lookbacks")


def apply_rules(section: dict, rule_names: tuple[str, ...] = NUMERIC, **names) -> dict:
    """A copy of a recipe section with the values of `rule_names` (and lists of them) evaluated."""
    out = dict(section)
    for key in rule_names:
        if key in out and out[key] is not None:
            v = out[key]
            out[key] = [evaluate_rule(x, **names) for x in v] if isinstance(v, list) else evaluate_rule(v, **names)
    return out
