"""The module's layout holds (docs/architecture.md, "Layout of the module"): its import
graph has no loop, no feature reads another feature's tables (imports its ``store``),
every feature package has the same shape, and no product file grows past ~600 lines
without saying why at its top."""

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "synapse_module"
FEATURES = (
    "roster",
    "content",
    "lessons",
    "broadcasts",
    "media_tokens",
    "scheduled_posts",
    "privacy",
    "statistics",
)
PRODUCT = ("synapse_module", "sfu", "bridge", "broadcast_relay", "parta_common")
LONG = 600
# What a long file's docstring says, at its top, to explain itself.
REASON = "Longer than 600 lines because"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_only(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import: deferred ones inside functions too, and the ones only a type checker
    reads (``if TYPE_CHECKING:``, marked True)."""
    found: list[tuple[ast.Import | ast.ImportFrom, bool]] = []
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, typing_only = stack.pop()
        typing_only = typing_only or _type_checking_only(node)
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append((node, typing_only))
        stack.extend((child, typing_only) for child in ast.iter_child_nodes(node))
    return found


def import_graph() -> dict[str, set[str]]:
    """``synapse_module``'s modules → the ``synapse_module`` modules each imports (type-only
    imports too: a loop through them is still two modules that need each other)."""
    modules = {_module_name(p): p for p in MODULE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node, typing_only in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                # ``from pkg import sub`` imports the submodule when there is one.
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            if typing_only:
                # A feature names the type of the module that builds it (the composition
                # root, ``PartaModule``) without importing it: the one type-only edge
                # left out. Every other type-only import counts like a real one.
                targets = [t for t in targets if t != MODULE.name]
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import loop, as the modules along it, or ``None``."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def feature_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in FEATURES else None


def test_the_module_has_no_import_loop() -> None:
    graph = import_graph()
    assert len(graph) > 40
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph) or [])


def test_the_loop_finder_finds_loops() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_feature_reads_another_features_tables() -> None:
    offenders = [
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        for target in targets
        if target.endswith(".store")
        and feature_of(target) is not None
        and feature_of(module) != feature_of(target)
    ]
    assert not offenders


@pytest.mark.parametrize("feature", FEATURES)
def test_every_feature_has_the_same_shape(feature: str) -> None:
    package = MODULE / feature
    assert (package / "__init__.py").is_file()
    # Routes; pure decisions; request schemas as a file (validator and OpenAPI read it).
    for part in ("api.py", "rules.py", "requests.json"):
        assert (package / part).is_file(), f"{feature}/{part}"
    schemas = json.loads((package / "requests.json").read_text(encoding="utf-8"))
    assert schemas
    assert all(s.get("type") == "object" for s in schemas.values())


def test_request_schemas_agree_with_the_code_they_mirror() -> None:
    """The JSON files spell out a few values the code also names."""
    from parta_common.roles import Role
    from synapse_module.lessons import rules as lessons
    from synapse_module.lessons.api import ATTENDANCE_BODY
    from synapse_module.roster import rules as roster
    from synapse_module.roster.schemas import PUT_MEMBER_SCHEMA, REQUEST_SCHEMAS

    policy = REQUEST_SCHEMAS["CreateSchool"]["properties"]["policy"]["properties"]
    assert policy["dm_policy"]["enum"] == list(roster.DM_POLICIES)
    roles = PUT_MEMBER_SCHEMA["properties"]["roles"]["items"]["enum"]
    assert roles == [r.value for r in Role if r is not Role.COORDINATOR]
    assert ATTENDANCE_BODY["properties"]["events"]["maxItems"] == lessons.MAX_ATTENDANCE_EVENTS


def test_long_files_say_why() -> None:
    silent = []
    for top in PRODUCT:
        for path in (ROOT / top).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if text.count("\n") <= LONG:
                continue
            docstring = ast.get_docstring(ast.parse(text)) or ""
            if REASON not in docstring:
                silent.append(f"{path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    assert not silent, f"over {LONG} lines without '{REASON} …' at the top: {silent}"
