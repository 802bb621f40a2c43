"""The code's shape: no import cycles between modules, no guessing at a model's interface outside models/, and
short functions (a longer one says why in a ``# long:`` comment above its ``def``)."""

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "odevideo"
MAX_LINES = 50  # of a function's body: its signature and docstring left out


def modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def module_imports(path: Path, known: set[str]) -> set[str]:
    """The odevideo modules a module imports at its top level (``if TYPE_CHECKING:`` blocks included; imports
    inside functions are lazy and left out)."""
    out = set()
    tree = ast.parse(path.read_text())
    nodes = list(tree.body)
    for node in tree.body:
        if isinstance(node, ast.If):
            nodes.extend(node.body)
    for node in nodes:
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        out.update(n for n in names if n in known)
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_module_imports_itself_through_others():
    found = modules()
    # a package's __init__ re-exports its submodules: an edge from a submodule up to its own package is how
    # Python imports packages, not a cycle of design
    graph = {name: {m for m in module_imports(path, set(found)) if not name.startswith(m + ".")}
             for name, path in found.items()}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_getattr_or_hasattr_on_a_model_outside_models():
    pattern = re.compile(r"(getattr|hasattr)\((ckpt\.)?model\b")
    offenders = [f"{p.relative_to(SRC)}:{i}" for p in SRC.rglob("*.py") if "models" not in p.parts
                 for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not offenders


def test_every_function_is_short_or_says_why():
    long = []
    for path in SRC.rglob("*.py"):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            body = node.body
            if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and len(body) > 1:
                body = body[1:]  # the docstring
            n = node.end_lineno - body[0].lineno + 1
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            justified = lines[start - 2].strip().startswith("# long:")
            if n > MAX_LINES and not justified:
                long.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({n} lines)")
    assert not long
