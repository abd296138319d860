"""The library's shape: no import cycle (function-level imports included), stage modules that use the library
but never the config or runner that drive them, networks that import no data code."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "guidedlabelling"


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path):
    """The package's modules that `path` imports, anywhere in the file."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            target = f"{base}.{node.module}" if node.module else base
            found |= {f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            found |= {n for n in names if n and n.startswith("guidedlabelling")}
    return {m for m in found if m in MODULES and m != name}


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {name: imports(path) for name, path in MODULES.items()}
STAGE_MODULES = {name for name in MODULES if name.startswith("guidedlabelling.stages.")}
for _driver in ("guidedlabelling.settings", "guidedlabelling.runner"):  # their importlib imports: every stage module
    GRAPH[_driver] |= STAGE_MODULES


def test_the_graph_is_read():
    assert "guidedlabelling.transforms" in GRAPH["guidedlabelling.stages.seed_train"]
    assert "guidedlabelling.networks.vgg" in GRAPH["guidedlabelling.networks.efficientnet"]
    assert "guidedlabelling.stages.seed_heatmaps" in GRAPH["guidedlabelling.stages.seed_eval"]


def test_no_import_cycle():
    state = {}

    def visit(node, path):
        if state.get(node) == "open":
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(node):] + [node]))
        if state.get(node) != "done":
            state[node] = "open"
            for nxt in sorted(GRAPH[node]):
                visit(nxt, path + [node])
            state[node] = "done"

    for node in sorted(GRAPH):
        visit(node, [])


def test_stage_modules_do_not_import_the_driver():
    for name, deps in GRAPH.items():
        if name.startswith("guidedlabelling.stages."):
            assert not deps & {"guidedlabelling.config", "guidedlabelling.settings", "guidedlabelling.naming",
                               "guidedlabelling.runner"}, name


def test_networks_import_no_data_code():
    data_code = {f"guidedlabelling.{m}" for m in ("tags", "io", "sampling", "transforms")}
    for name, deps in GRAPH.items():
        if name.startswith("guidedlabelling.networks"):
            found = {d for d in deps if d in data_code or d.startswith("guidedlabelling.datasets")}
            assert not found, (name, found)
