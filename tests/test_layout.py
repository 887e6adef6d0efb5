"""The module's layout holds (docs/architecture.md, "Layout of the module"): its import
graph has no loop, no feature reads another feature's tables (neither imports its
``store`` nor names its tables in SQL), every feature package has the same shape with its
migrations beside its SQL, and no product file grows past ~600 lines without saying why
at its top."""

import ast
import json
import re
from pathlib import Path

import pytest

from synapse_module.migrations import AREAS

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "synapse_module"
# Every package of the module is a feature but these (folders of files, not code).
NOT_FEATURES = ("static",)
FEATURES = tuple(
    sorted(p.parent.name for p in MODULE.glob("*/__init__.py") if p.parent.name not in NOT_FEATURES)
)
# Cross-cutting packages of the feature shape that serve no routes of their own.
NO_ROUTES = {"delegation": "request auth: whom the bot may act for"}
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


def test_the_features_are_found() -> None:
    assert {"roster", "content", "lessons", "broadcasts", "privacy"} <= set(FEATURES)
    assert len(FEATURES) >= 11


@pytest.mark.parametrize("feature", FEATURES)
def test_every_feature_has_the_same_shape(feature: str) -> None:
    package = MODULE / feature
    # Routes (thin); pure decisions; the texts it says; what it documents in __init__.
    for part in ("__init__.py", "api.py", "rules.py", "texts.py"):
        assert (package / part).is_file(), f"{feature}/{part}"
    assert ast.get_docstring(ast.parse((package / "__init__.py").read_text("utf-8")))
    # Request schemas as a file (validator and OpenAPI read it), for a feature with routes.
    if feature not in NO_ROUTES:
        schemas = json.loads((package / "requests.json").read_text(encoding="utf-8"))
        assert all(s.get("type") == "object" for s in schemas.values())
    # Tables: created by its own migrations (schema.py, in the registry under its name),
    # read and written by its own store.py.
    if (package / "schema.py").is_file():
        assert (package / "store.py").is_file(), f"{feature} has tables but no store.py"
        module = __import__(f"synapse_module.{feature}.schema", fromlist=["STEPS"])
        assert AREAS.get(feature) is module.STEPS, f"{feature}: not in migrations.AREAS"
    else:
        assert not tables_created_in(package / "store.py"), feature


_CREATE = re.compile(r"\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.I)
# Where SQL names a table: FROM, JOIN, INTO, UPDATE, TABLE (ALTER), ON (an index).
_NAMES = re.compile(r"\b(?:FROM|JOIN|INTO|UPDATE|TABLE|ON)\s+(\w+)", re.I)


def _sql(path: Path) -> str:
    """The string literals of a Python file (SQL and everything else), joined."""
    if not path.is_file():
        return ""
    return "\n".join(
        node.value
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def tables_created_in(path: Path) -> list[str]:
    return _CREATE.findall(_sql(path))


def table_owners() -> dict[str, str]:
    """Every table of the module → the schema area (a feature, ``jobs`` or
    ``service_tokens``) that creates it."""
    owners: dict[str, str] = {}
    # Two areas are one module each, not feature packages: the jobs' table, spent tokens.
    single = {"jobs": MODULE / "jobs.py", "service_tokens": MODULE / "service_tokens.py"}
    files = {f: MODULE / f / "schema.py" for f in FEATURES} | single
    for area, path in files.items():
        for table in tables_created_in(path):
            assert table not in owners, f"{table} created by {owners[table]} and {area}"
            owners[table] = area
    return owners


# A table a migration of another area changes: the area names and steps are history
# (parta_schema keeps them), so they stay where they ran.
CHANGED_BY_ANOTHER_AREA = {("privacy", "parta_audit"): "the audit log's hash chain"}
# The one store whose subject is a person across every feature: export (everything held
# about them) and erasure (nothing left of them) read and delete every feature's rows
# that name one person (docs/privacy.md). Nothing else of privacy reads other tables.
PERSON_ACROSS_FEATURES = "synapse_module/privacy/store.py"


def test_no_feature_names_another_features_tables_in_sql() -> None:
    owners = table_owners()
    assert len(owners) > 30
    assert set(owners.values()) == set(AREAS), "every area creates a table"
    offenders = []
    for feature in FEATURES:
        for path in sorted((MODULE / feature).rglob("*.py")):
            for table in set(_NAMES.findall(_sql(path))):
                owner = owners.get(table)
                if owner is None or owner == feature:
                    continue
                if path.name == "schema.py" and (feature, table) in CHANGED_BY_ANOTHER_AREA:
                    continue
                if str(path.relative_to(ROOT)) == PERSON_ACROSS_FEATURES:
                    continue
                offenders.append(f"{path.relative_to(ROOT)} names {table} ({owner}'s)")
    assert offenders == []


def test_the_table_check_sees_a_read_of_another_features_table(tmp_path: Path) -> None:
    store = tmp_path / "store.py"
    store.write_text('Q = "SELECT s.name FROM parta_lessons l JOIN parta_schools s ON x"\n')
    named = set(_NAMES.findall(_sql(store)))
    owners = table_owners()
    assert {owners[t] for t in named if t in owners} == {"lessons", "roster"}


def test_request_schemas_agree_with_the_code_they_mirror() -> None:
    """The JSON files spell out a few values the code also names."""
    from parta_common.roles import Role
    from synapse_module.lessons import rules as lessons
    from synapse_module.lessons.api import ATTENDANCE_BODY
    from synapse_module.privacy import api as privacy_requests
    from synapse_module.privacy.rules import MESSAGES_RULES
    from synapse_module.roster import rules as roster
    from synapse_module.roster.requests import PUT_MEMBER_SCHEMA, REQUEST_SCHEMAS

    policy = REQUEST_SCHEMAS["CreateSchool"]["properties"]["policy"]["properties"]
    assert policy["dm_policy"]["enum"] == list(roster.DM_POLICIES)
    assert policy["erasure_messages"]["enum"] == list(MESSAGES_RULES)
    erase = privacy_requests.REQUEST_SCHEMAS["EraseRequest"]["properties"]["messages"]
    assert erase["enum"] == list(MESSAGES_RULES)
    roles = PUT_MEMBER_SCHEMA["properties"]["roles"]["items"]["enum"]
    assert roles == [r.value for r in Role if r is not Role.COORDINATOR]
    assert ATTENDANCE_BODY["properties"]["events"]["maxItems"] == lessons.MAX_ATTENDANCE_EVENTS


# Product files people write, by how their top says why they are long.
_TOP = {".py": "docstring", ".js": "//", ".html": "<!--", ".css": "/*"}


def _says_why_at_top(path: Path, text: str) -> bool:
    if path.suffix == ".py":
        return REASON in (ast.get_docstring(ast.parse(text)) or "")
    # The first comment block: the lines up to the first that is no comment.
    head = []
    for line in text.splitlines():
        if not line.strip().startswith(("//", "<!--", "/*", "*", "<!doctype", "<html")):
            break
        head.append(line)
    return REASON in " ".join(" ".join(head).split())


def test_long_files_say_why() -> None:
    silent = []
    checked = 0
    for top in PRODUCT:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix not in _TOP or not path.is_file():
                continue
            text = path.read_text(encoding="utf-8")
            if text.startswith("// Generated by"):
                continue  # exports of the catalogue (devtools/catalogue.py)
            checked += 1
            if text.count("\n") > LONG and not _says_why_at_top(path, text):
                silent.append(f"{path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    assert checked > 150
    assert not silent, f"over {LONG} lines without '{REASON} …' at the top: {silent}"


def test_a_long_file_without_its_reason_is_found(tmp_path: Path) -> None:
    long_js = "\n".join(["// The page.", "let a = 1;", *["a += 1;"] * LONG])
    assert not _says_why_at_top(tmp_path / "page.js", long_js)
    assert _says_why_at_top(tmp_path / "page.js", "// The page.\n// " + REASON + " x.\nlet a;")
    assert _says_why_at_top(tmp_path / "m.py", f'"""M.\n\n{REASON} x."""\n')
